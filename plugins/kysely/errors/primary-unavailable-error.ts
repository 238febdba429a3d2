import { RouteMqError } from '../../../src/routemq/errors/route-mq-error.js'

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

  constructor(candidates: readonly string[], cause?: unknown) {
    super(
      `No PostgreSQL primary is available (tried ${candidates.join(', ')}${cause instanceof Error ? `: ${cause.message}` : ''}). ` +
        'The write was not made. Check the primary, or list every candidate primary in database.primary so a promoted replica is found.',
      cause === undefined ? undefined : { cause },
    )
  }
}

export function isPrimaryUnavailableError(error: unknown): error is PrimaryUnavailableError {
  return error instanceof PrimaryUnavailableError
}
