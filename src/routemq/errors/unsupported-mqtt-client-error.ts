import { RouteMqError } from './route-mq-error.js'

/**
 * The installed MQTT.js lacks the packet-level hooks the transport uses to
 * acknowledge a message only after its handler settled.
 *
 * @example
 * // thrown at start when MQTT.js changed its internals; pin mqtt to ^5.16
 */
export class UnsupportedMqttClientError extends RouteMqError {
  readonly code = 'UNSUPPORTED_MQTT_CLIENT'

  constructor(missing: string) {
    super(
      `The installed "mqtt" package has no ${missing}, which deferred acknowledgements need. ` +
        'Install the mqtt version this package declares (npm install mqtt@^5.16).',
    )
  }
}

export function isUnsupportedMqttClientError(error: unknown): error is UnsupportedMqttClientError {
  return error instanceof UnsupportedMqttClientError
}
