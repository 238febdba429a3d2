import { InvalidOptionError } from './errors/invalid-option-error.js'
import { byKind, isBoolean, listOf, matching, nonEmptyString, oneOf, type OptionCheck, type OptionShape } from './option-shape.js'
import type { GroupOptions, RouteOptions } from './route.js'

const ERROR_POLICY = "must be 'ack', 'redeliver' or { deadLetter: 'topic/prefix' }"

/** An `ErrorPolicy`: the application's default, or a route's own. */
export const errorPolicy: OptionCheck = byKind(ERROR_POLICY, {
  string: oneOf(['ack', 'redeliver'], "'ack', 'redeliver' or { deadLetter: 'topic/prefix' }"),
  object: (value, field) => {
    const { deadLetter, ...rest } = value as { deadLetter?: unknown }
    if (typeof deadLetter !== 'string' || deadLetter === '' || Object.keys(rest).length > 0) throw new InvalidOptionError(field, ERROR_POLICY)
  },
})

/** A shared subscription group: a topic level brokers take after `$share/`. */
export const SHARED_GROUP = /^[^/+#$\u0000]+$/

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
    string: matching(SHARED_GROUP, 'true, false or a group name without "/", "+", "#" or "$"'),
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
