import { errorPolicyProblem } from './dead-letter.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { mqttTextProblem } from './mqtt-text.js'
import { byKind, isBoolean, listOf, nonEmptyString, oneOf, type OptionCheck, type OptionShape } from './option-shape.js'
import type { GroupOptions, RouteOptions } from './route.js'

/** An `ErrorPolicy`: the application's default, or a route's own; `errorPolicyProblem` is the one check. */
export const errorPolicy: OptionCheck = (value, field) => {
  if (value === undefined) return
  const problem = errorPolicyProblem(value)
  if (problem) throw new InvalidOptionError(field, problem)
}

/** A shared subscription group: a topic level brokers take after `$share/`, in MQTT text. */
const SHARED_GROUP = /^[^/+#$]+$/

export function isSharedGroupName(name: string): boolean {
  return SHARED_GROUP.test(name) && mqttTextProblem(name) === undefined
}

const middleware = listOf((value, field) => {
  if (typeof value !== 'function' && typeof (value as { handle?: unknown } | null)?.handle !== 'function') {
    throw new InvalidOptionError(field, 'must be a function (ctx, next) or an object with handle(ctx, next)')
  }
})

/** The keys and types of `RouteOptions`. */
export const ROUTE_OPTIONS_SHAPE: OptionShape<RouteOptions> = {
  qos: oneOf([0, 1, 2]),
  middleware,
  shared: byKind('must be true, false or a group name without "/", "+", "#" or "$"', {
    boolean: isBoolean,
    string: (value, field) => {
      if (!isSharedGroupName(value as string)) throw new InvalidOptionError(field, 'must be true, false or a group name without "/", "+", "#", "$" or characters MQTT forbids')
    },
  }),
  payload: oneOf(['auto', 'json', 'text', 'buffer']),
  onError: errorPolicy,
  name: nonEmptyString,
}

/** The keys and types of `GroupOptions`; the prefix is parsed as a topic pattern. */
export const GROUP_OPTIONS_SHAPE: OptionShape<GroupOptions> = {
  prefix: byKind('must be topic levels, such as "devices/{id}"', { string: true }),
  middleware,
}
