import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A query or transaction was started after the pool was closed (by
 * `pool.close()` or `db.destroy()`): shutting down refuses new work and lets
 * the work in flight finish.
 *
 * @example
 * await db.destroy()
 * await db.selectFrom('devices').selectAll().execute() // ReplicaPoolClosedError
 */
export class ReplicaPoolClosedError extends RouteMqError {
  readonly code = 'REPLICA_POOL_CLOSED'

  /** `'under-query'`: the query was running, or its transaction open, when the grace period ended. */
  constructor(readonly when: 'before-query' | 'under-query' = 'before-query') {
    super(
      when === 'before-query'
        ? 'The replica pool is closed, so no new query can start. Run queries before closing it (or destroying its Kysely instance), or create a new pool.'
        : 'The replica pool closed this connection under its query or transaction: it was still held closeTimeoutMs after close() was called, ' +
            'so a write or COMMIT in flight may or may not have taken effect. Let work finish before closing the pool, or raise closeTimeoutMs.',
    )
  }
}

export function isReplicaPoolClosedError(error: unknown): error is ReplicaPoolClosedError {
  return error instanceof ReplicaPoolClosedError
}
