import type { TopologyBinaryOptions } from './locate-binaries.js'

/**
 * What {@link startTopology} starts. Every field is optional; `{}` starts a
 * single broker and no PostgreSQL.
 *
 * @example
 * const options: TopologyOptions = { brokers: 3, replicas: 2, replicaApplyDelayMs: [0, 500] }
 */
export interface TopologyOptions {
  /** Number of Mosquitto brokers; default 1, 0 allowed. */
  readonly brokers?: number
  /** Number of streaming replicas of the primary; default 0. */
  readonly replicas?: number
  /** Start a PostgreSQL primary; default `true` when `replicas > 0`, else `false`. */
  readonly postgres?: boolean
  /** `recovery_min_apply_delay` in ms, for all replicas or one entry per replica; default 0. */
  readonly replicaApplyDelayMs?: number | readonly number[]
  /** Also give every broker a websocket listener (see `BrokerHandle.wsUrl`); default `false`. */
  readonly websockets?: boolean
  /** mosquitto.conf lines appended to every broker's generated configuration. */
  readonly brokerConfig?: string
  /** Leave the temporary directory in place after `stop()`, for debugging; default `false`. */
  readonly keepDirectory?: boolean
  /** How long each process may take to become ready; default 30000 ms. */
  readonly startTimeoutMs?: number
  /** Where to find mosquitto and the PostgreSQL executables. */
  readonly binaries?: TopologyBinaryOptions
}
