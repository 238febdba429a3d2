import type { BrokerHandle } from './broker-handle.js'
import type { PostgresHandle } from './postgres-handle.js'

/**
 * A running set of local brokers and PostgreSQL servers in one temporary
 * directory, as returned by {@link startTopology}. Always `stop()` it, e.g. in
 * an `after` hook; a node process that exits first still kills the processes
 * and removes the directory.
 *
 * @example
 * const topology = await startTopology({ brokers: 2, replicas: 1 })
 * try {
 *   console.log(topology.brokers[0].url, topology.primary?.url, topology.replicas[0].url)
 * } finally {
 *   await topology.stop()
 * }
 */
export interface Topology {
  /** The temporary directory holding every process's files and logs. */
  readonly directory: string
  readonly brokers: readonly BrokerHandle[]
  /** The PostgreSQL primary, when one was asked for. */
  readonly primary: PostgresHandle | undefined
  readonly replicas: readonly PostgresHandle[]

  /**
   * Stops every process, waits for them to exit and removes the directory
   * (unless `keepDirectory`). Calling it again returns the same promise.
   *
   * @example
   * after(() => topology.stop())
   */
  stop(): Promise<void>
}
