import { RouteMqError } from './route-mq-error.js'

/**
 * The transport could not establish its first connection to a broker. The
 * message carries the broker (without credentials) and the cause, e.g. a
 * refused connection, a rejected login or a certificate the CA does not sign.
 *
 * @example
 * await app.start() // ConnectionFailedError: Could not connect to mqtt://127.0.0.1:1883: connect ECONNREFUSED ...
 */
export class ConnectionFailedError extends RouteMqError {
  readonly code = 'CONNECTION_FAILED'

  constructor(
    readonly broker: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    super(
      `Could not connect to ${broker}: ${reason}. Check that the broker runs and is reachable, and the URL, credentials and TLS settings.`,
      { cause },
    )
  }
}

export function isConnectionFailedError(error: unknown): error is ConnectionFailedError {
  return error instanceof ConnectionFailedError
}
