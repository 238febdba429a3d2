import type { ApplicationOptions } from './application.js'
import { DEFAULT_MQTT_TRANSPORT_OPTIONS_SHAPE } from './default-mqtt-transport-options-shape.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { isLogger, milliseconds, listOf, oneOf, required, shapeOf, wholeNumber, type OptionCheck, type OptionShape } from './option-shape.js'
import { errorPolicy } from './route-options-shape.js'

/** An object with the methods named; how the kernel tells a router, a module or a transport. */
function withMethods(methods: readonly string[], described: string): OptionCheck {
  return (value, field) => {
    if (value === undefined) return
    const object = value as Record<string, unknown> | null
    if (typeof object !== 'object' || object === null || methods.some((method) => typeof object[method] !== 'function')) {
      throw new InvalidOptionError(field, described)
    }
  }
}

/** The keys and types of `ApplicationOptions`, the default transport's (`mqtt`) included. */
export const APPLICATION_OPTIONS_SHAPE: OptionShape<ApplicationOptions> = {
  router: required(withMethods(['match'], 'pass the Router your routes are declared on'), 'pass the Router your routes are declared on'),
  modules: listOf(withMethods(['register'], 'a module is an object with register(container) and optional start/stop')),
  container: withMethods(['resolve', 'createChildContainer'], "must be a tsyringe container, such as tsyringe's container or one of its children"),
  mqtt: shapeOf(DEFAULT_MQTT_TRANSPORT_OPTIONS_SHAPE),
  transport: withMethods(['connect', 'publish'], 'must be an MqttTransport, such as a BrokerPool or a DefaultMqttTransport'),
  logger: isLogger,
  onError: errorPolicy,
  maxInFlight: wholeNumber(1),
  maxQueued: wholeNumber(1),
  ordering: oneOf(['topic', 'none']),
  drainTimeoutMs: milliseconds(0),
}
