import type { TopologyBinaryOptions } from './locate-binaries.js'

/**
 * What {@link startTopology} starts. Every field is optional; `{}` starts a
 * single Mosquitto broker and no PostgreSQL.
 *
 * @example
 * const options: TopologyOptions = { brokers: 3, replicas: 2, replicaApplyDelayMs: [0, 500] }
 * const cluster: TopologyOptions = { brokers: 3, brokerKind: 'nats' }
 */
export interface TopologyOptions {
  /** Number of brokers (Mosquitto brokers, or nodes of one NATS cluster); default 1, 0 allowed. */
  readonly brokers?: number
  /**
   * Which broker to run; default `'mosquitto'`.
   *
   * - `'mosquitto'`: independent Mosquitto brokers (`broker-1`, ...) that
   *   know nothing of each other.
   * - `'nats'`: one nats-server cluster of `brokers` nodes (`nats-1`, ...)
   *   with JetStream, whose MQTT listeners are `topology.brokers`. Any node
   *   sees every message, and persistent sessions (clean session false) live
   *   in JetStream, replicated to min(3, brokers) nodes: a client can resume
   *   its session, with the QoS 1 messages queued meanwhile, on another node.
   *   A node accepts MQTT only while JetStream has a leader, i.e. while a
   *   majority of the nodes run, so `restart()` nodes that are all down
   *   together (`Promise.all`), not one after another; a node killed while
   *   it led can leave the others without MQTT for some seconds, until a new
   *   leader is elected. nats-server 2.9 speaks MQTT 3.1.1 only (an
   *   MQTT 5 CONNECT is refused with return code 1), QoS 0 and 1 only (QoS 2
   *   is not supported), treats `$share/...` as a literal topic rather than
   *   a shared subscription, and has no `$SYS` topics; there is no websocket
   *   listener for MQTT. Needs the `nats-server` executable.
   *
   * @example
   * const topology = await startTopology({ brokers: 3, brokerKind: 'nats' })
   * const device = await mqtt.connectAsync(topology.brokers[0].url, { protocolVersion: 4, clean: false, clientId: 'device-1' })
   */
  readonly brokerKind?: 'mosquitto' | 'nats'
  /**
   * Let Mosquitto brokers keep sessions, subscriptions, queued messages and
   * retained messages across restarts, in `data/` of each broker's
   * directory; default `false`. Mosquitto saves them on `stop()` and
   * `restart()` (SIGTERM), and every `autosaveIntervalSeconds` (default 30;
   * 0 saves on shutdown only); after `kill()` only what the last autosave
   * wrote comes back. Not for `brokerKind: 'nats'`, which always keeps them
   * in JetStream on disk.
   *
   * @example
   * const topology = await startTopology({ brokers: 1, brokerPersistence: { autosaveIntervalSeconds: 1 } })
   * await topology.brokers[0].restart() // persistent sessions survive
   */
  readonly brokerPersistence?: boolean | { readonly autosaveIntervalSeconds?: number }
  /** Number of streaming replicas of the primary; default 0. */
  readonly replicas?: number
  /** Start a PostgreSQL primary; default `true` when `replicas > 0`, else `false`. */
  readonly postgres?: boolean
  /** `recovery_min_apply_delay` in ms, for all replicas or one entry per replica; default 0. */
  readonly replicaApplyDelayMs?: number | readonly number[]
  /** Also give every Mosquitto broker a websocket listener (see `BrokerHandle.wsUrl`); default `false`. */
  readonly websockets?: boolean
  /**
   * Lines appended to every broker's generated configuration: mosquitto.conf
   * lines, or nats-server configuration with `brokerKind: 'nats'` (where a
   * repeated key replaces the generated one).
   *
   * @example
   * const options: TopologyOptions = { brokerConfig: 'max_queued_messages 10' }
   */
  readonly brokerConfig?: string
  /** Leave the temporary directory in place after `stop()`, for debugging; default `false`. */
  readonly keepDirectory?: boolean
  /** How long each process may take to become ready; default 30000 ms. */
  readonly startTimeoutMs?: number
  /** Where to find mosquitto, nats-server and the PostgreSQL executables. */
  readonly binaries?: TopologyBinaryOptions
}
