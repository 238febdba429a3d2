import { RouteMqError } from './route-mq-error.js'

// The reason without its "did you mean", so that withFieldPrefix can prefix the suggestion as it prefixes the field.
const BARE_REASON: unique symbol = Symbol('bare reason')

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
  /** What is wrong and how to fix it, without the field; it ends with `; did you mean <didYouMean>?` when there is one. */
  readonly reason: string
  readonly [BARE_REASON]: string

  constructor(
    readonly field: string,
    reason: string,
    /** The full path of the option probably meant, for a key no option has (`mqtt.keepaliveSeconds`). */
    readonly didYouMean?: string,
  ) {
    const full = didYouMean === undefined ? reason : `${reason}; did you mean ${didYouMean}?`
    super(`Option "${field}" is invalid: ${full}`)
    this.reason = full
    this[BARE_REASON] = reason
  }
}

export function isInvalidOptionError(error: unknown): error is InvalidOptionError {
  return error instanceof InvalidOptionError
}

/**
 * Runs `check`, giving any `InvalidOptionError` it throws the field prefix
 * `prefix.`, for options validated by a part that does not know where it
 * sits in a larger tree (`mode` becomes `mqtt.mode`); its did-you-mean gets
 * the prefix too (`did you mean mqtt.keepaliveSeconds?`).
 *
 * @example
 * withFieldPrefix('mqtt', () => resolveBrokerPoolOptions(options.mqtt, clientId))
 */
export function withFieldPrefix<T>(prefix: string, check: () => T): T {
  try {
    return check()
  } catch (error) {
    if (error instanceof InvalidOptionError && !error.field.startsWith(`${prefix}.`) && error.field !== prefix) {
      throw new InvalidOptionError(`${prefix}.${error.field}`, error[BARE_REASON], error.didYouMean === undefined ? undefined : `${prefix}.${error.didYouMean}`)
    }
    throw error
  }
}
