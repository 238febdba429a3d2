import { createRequire } from 'node:module'
import { RouteMqError } from './route-mq-error.js'

/** The MQTT.js versions the deferred acknowledgement was tested against; package.json pins the same range. */
export const TESTED_MQTT_RANGE = '~5.16.0'

/**
 * The installed MQTT.js lacks the packet-level hooks the transport uses to
 * acknowledge a message only after its handler settled, or no longer honours
 * them (checked at start: see `verifyDeferredAcks`).
 *
 * @example
 * // thrown at start when MQTT.js changed its internals; install mqtt@~5.16.0
 */
export class UnsupportedMqttClientError extends RouteMqError {
  readonly code = 'UNSUPPORTED_MQTT_CLIENT'

  constructor(missing: string) {
    super(
      `The installed "mqtt" package (${installedMqttVersion()}) has no ${missing}, which deferred acknowledgements need: ` +
        'without it a message would be acknowledged before it is handled. ' +
        `Install the mqtt version this package was tested with (npm install mqtt@${TESTED_MQTT_RANGE}).`,
    )
  }
}

export function isUnsupportedMqttClientError(error: unknown): error is UnsupportedMqttClientError {
  return error instanceof UnsupportedMqttClientError
}

function installedMqttVersion(): string {
  try {
    return `version ${(createRequire(import.meta.url)('mqtt/package.json') as { version: string }).version}`
  } catch {
    return 'version unknown'
  }
}
