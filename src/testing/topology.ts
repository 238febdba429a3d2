import type { BrokerHandle } from './broker-handle.js'
import type { PostgresHandle } from './postgres-handle.js'

/**
 * A running set of local brokers and PostgreSQL servers in one temporary
 * directory, as returned by {@link startTopology}. Always `stop()` it, e.g. in
 * an `after` hook: like an open server, a topology that is never stopped
 * keeps the node process alive (mocha without `--exit` hangs after its last
 * test).
 *
 * Cleanup without `stop()` is best effort. When the node process exits, or is
 * ended by SIGINT, SIGTERM or SIGHUP that the application does not handle
 * itself, the processes are signalled and the directory is removed. When
 * node is killed outright (SIGKILL from a CI timeout, the OOM killer), no
 * hook runs: on Linux with util-linux's setpriv every server still receives
 * a parent-death signal and ends, but the directory stays behind in TMPDIR.
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
  /**
   * The current PostgreSQL primary, when one was asked for: the server
   * started as primary until a replica is `promote()`d, then the server
   * promoted last. A stopped or killed primary stays the current one until
   * another is promoted. The replaced primary keeps its role and its handle
   * (keep a reference to it before promoting to restart it or read its log),
   * but is no longer returned here; restarting it makes a second, diverged
   * primary.
   */
  readonly primary: PostgresHandle | undefined
  /**
   * The servers started as replicas, in order. A promoted one keeps its
   * place here, with role `primary`.
   */
  readonly replicas: readonly PostgresHandle[]

  /**
   * Stops every process, waits for them to exit and removes the directory
   * (unless `keepDirectory`). Calling it again returns the same promise. From
   * the moment it is called no server of the topology can be started again:
   * a restart under way then rejects instead of leaving a process behind.
   *
   * @example
   * after(() => topology.stop())
   */
  stop(): Promise<void>
}
