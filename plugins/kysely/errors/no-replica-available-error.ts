import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A read had to go to a replica (inside `@ReadOnly`, or with
 * `fallbackToPrimary: false`) and no healthy, fresh-enough replica was left.
 *
 * @example
 * await devices.find(id).catch((e) => { if (isNoReplicaAvailableError(e)) return cached(id) })
 */
export class NoReplicaAvailableError extends RouteMqError {
  readonly code = 'NO_REPLICA_AVAILABLE'

  constructor(reason: string, cause?: unknown) {
    super(
      `No replica can serve this read: ${reason}. Add replicas, raise maxLagMs, or allow fallbackToPrimary.`,
      cause === undefined ? undefined : { cause },
    )
  }
}

export function isNoReplicaAvailableError(error: unknown): error is NoReplicaAvailableError {
  return error instanceof NoReplicaAvailableError
}
