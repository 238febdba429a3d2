import { RouteMqError } from '../../../src/routemq/errors/route-mq-error.js'

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

  constructor() {
    super('The replica pool is closed, so no new query can start. Run queries before closing it (or destroying its Kysely instance), or create a new pool.')
  }
}

export function isReplicaPoolClosedError(error: unknown): error is ReplicaPoolClosedError {
  return error instanceof ReplicaPoolClosedError
}
