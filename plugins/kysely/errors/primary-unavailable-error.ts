import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A write (or a read that had to fall back to it) needed the primary, and no
 * primary answered within the connect timeout. Nothing was written. Reads on
 * replicas carry on meanwhile.
 *
 * @example
 * await repo.save(reading).catch((e) => { if (isPrimaryUnavailableError(e)) holdForLater(reading) })
 */
export class PrimaryUnavailableError extends RouteMqError {
  readonly code = 'PRIMARY_UNAVAILABLE'

  /** @param midQuery the connection was lost while the statement ran, so its outcome is unknown. */
  constructor(candidates: readonly string[], cause?: unknown, readonly midQuery = false) {
    super(
      `No PostgreSQL primary is available (tried ${candidates.join(', ')}${cause instanceof Error ? `: ${cause.message}` : ''}). ` +
        (midQuery
          ? 'The connection was lost while the statement ran: it may or may not have been applied; check before repeating it. '
          : 'The statement was not sent. ') +
        'Check the primary, or list every candidate primary in database.primary so a promoted replica is found.',
      cause === undefined ? undefined : { cause },
    )
  }
}

export function isPrimaryUnavailableError(error: unknown): error is PrimaryUnavailableError {
  return error instanceof PrimaryUnavailableError
}
