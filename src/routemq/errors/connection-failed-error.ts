import { RouteMqError } from './route-mq-error.js'

/** One broker a transport tried, and its last error (none when it was never tried in time). */
export interface ConnectionAttempt {
  readonly broker: string
  readonly error: unknown
}

/** What a transport with several brokers adds: each one tried, and why it gave up. */
export interface ConnectionFailureDetail {
  readonly tried?: readonly ConnectionAttempt[]
  /** Why it stopped trying, said before the usual advice (`no broker connected within ...`). */
  readonly fix?: string
}

/**
 * The transport could not establish its first connection to a broker. The
 * message carries the broker (without credentials) and the cause, e.g. a
 * refused connection, a rejected login or a certificate the CA does not sign;
 * a transport with several brokers lists each one with its own last error
 * (`tried`).
 *
 * @example
 * await app.start() // ConnectionFailedError: Could not connect to mqtt://127.0.0.1:1883: connect ECONNREFUSED ...
 */
export class ConnectionFailedError extends RouteMqError {
  readonly code = 'CONNECTION_FAILED'
  /** Each broker tried and its last error; one entry for a single-broker transport. */
  readonly tried: readonly ConnectionAttempt[]

  constructor(
    readonly broker: string,
    cause: unknown,
    detail: ConnectionFailureDetail = {},
  ) {
    const tried = detail.tried ?? [{ broker, error: cause }]
    const reason = detail.tried
      ? `${detail.fix ?? 'none answered'}. Tried ${detail.tried.map((attempt) => `${attempt.broker} (${attempt.error === undefined ? 'no attempt finished' : reasonOf(attempt.error)})`).join('; ')}`
      : reasonOf(cause)
    super(
      `Could not connect to ${broker}: ${reason}. Check that the broker runs and is reachable, and the URL, credentials and TLS settings.`,
      { cause },
    )
    this.tried = Object.freeze([...tried])
  }
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

export function isConnectionFailedError(error: unknown): error is ConnectionFailedError {
  return error instanceof ConnectionFailedError
}
