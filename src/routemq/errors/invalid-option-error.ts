import { RouteMqError } from './route-mq-error.js'

/**
 * A configuration value is missing or wrong. `field` is the dotted path of the
 * offending option (or the environment variable's name), so the message points
 * at exactly what to change. Secret values are never echoed.
 *
 * @example
 * Application.create({ router, mqtt: { url: 'tcp//broker' } })
 * // throws: Option "mqtt.url" is invalid: ...
 */
export class InvalidOptionError extends RouteMqError {
  readonly code = 'INVALID_OPTION'

  constructor(
    readonly field: string,
    /** What is wrong and how to fix it, without the field. */
    readonly reason: string,
  ) {
    super(`Option "${field}" is invalid: ${reason}`)
  }
}

export function isInvalidOptionError(error: unknown): error is InvalidOptionError {
  return error instanceof InvalidOptionError
}

/**
 * Runs `check`, giving any `InvalidOptionError` it throws the field prefix
 * `prefix.`, for options validated by a part that does not know where it
 * sits in a larger tree (`mode` becomes `mqtt.mode`).
 *
 * @example
 * withFieldPrefix('mqtt', () => resolveBrokerPoolOptions(options.mqtt, clientId))
 */
export function withFieldPrefix<T>(prefix: string, check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (error instanceof InvalidOptionError && !error.field.startsWith(`${prefix}.`) && error.field !== prefix) {
      throw new InvalidOptionError(`${prefix}.${error.field}`, error.reason)
    }
    throw error
  }
}
