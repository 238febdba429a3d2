import type { EffectiveBrokerPoolMode } from './broker-pool-options.js'
import type { SessionCounts } from './session-steward.js'
import type { TopologyVerdict } from './topology-check.js'

/** A broker turned unhealthy. */
export interface BrokerDownEvent {
  readonly broker: string
}

/** A broker turned healthy. */
export interface BrokerUpEvent {
  readonly broker: string
}

/** No broker is healthy; the pool keeps probing. */
export interface AllDownEvent {
  readonly brokers: readonly string[]
}

/** One broker as the pool sees it. */
export interface BrokerStatus {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly connected: boolean
  readonly latencyMs: number | undefined
  readonly outstanding: number
  readonly region: string | undefined
  /** Messages the broker says it dropped since the pool first heard from it (Mosquitto's `$SYS` counter). */
  readonly dropped: number
}

/** Counters since the pool was created, for metrics. */
export interface BrokerPoolStats {
  /** The mode the pool runs in (`'auto'` resolved at connect; `undefined` before). */
  readonly mode: EffectiveBrokerPoolMode | undefined
  /** What the topology check found: `'unchecked'` when it is off or has not run. */
  readonly topology: TopologyVerdict | 'unchecked'
  /** The broker of the active connection (failover mode). */
  readonly active: string | undefined
  readonly brokers: readonly BrokerStatus[]
  readonly failovers: number
  readonly published: number
  readonly acknowledged: number
  /** Sends of a publish after the first (replays after a failover). */
  readonly resent: number
  /** Publishes taken and not yet acknowledged. */
  readonly buffered: number
  readonly bufferedBytes: number
  readonly droppedQos0: number
  readonly rejectedBufferFull: number
  readonly qos2Interrupted: number
  readonly ackTimeouts: number
  /** Publishes given up after connections were lost again and again while they were in flight. */
  readonly abandoned: number
  readonly probes: number
  readonly probeFailures: number
  /** Sessions adopted from departed instances, handed back or kept at a graceful stop. */
  readonly sessions: Readonly<SessionCounts>
  /** Times a broker came back without this pool's persistent session (a restart without persistence): each is logged at ERROR. */
  readonly sessionsLost: number
}
