import type { Disposer } from '../typed-event.js'

/** One request a pool served: a publish acknowledged (or not) by a broker, a statement run on a server. */
export interface RequestObserved {
  readonly backend: string
  readonly durationMs: number
  readonly failed: boolean
}

/** One backend of a pool, for metrics. */
export interface BackendMetrics {
  readonly id: string
  readonly up: boolean
  /** Replicas: how far behind the primary, when known. */
  readonly lagSeconds?: number
  readonly lagBytes?: number
  /** Replica pools: the median and 99th percentile of the last queries' durations on it, in seconds. */
  readonly p50Seconds?: number
  readonly p99Seconds?: number
  /** Brokers: messages the broker reports it dropped (its queue or in-flight limits) since the pool first heard from it. */
  readonly dropped?: number
}

/** A pool's state, read at each scrape. */
export interface PoolMetricsSnapshot {
  readonly backends: readonly BackendMetrics[]
  /** Moves to another backend after a failure since the pool was created: broker failovers, reads moved to another server. */
  readonly failovers: number
  /** Publishes taken and not yet acknowledged by a broker (broker pools). */
  readonly offlineBuffer?: { readonly messages: number; readonly bytes: number }
  /** Broker pools: persistent sessions of departed instances this one drained and ended. */
  readonly sessionsAdopted?: number
}

/**
 * A pool that `LoadBalancingMetrics` can observe: the broker pool and the
 * replica pool implement it.
 */
export interface MeasuredPool {
  /** The `pool` label: `'mqtt'`, `'postgres'`. */
  readonly metricsLabel: string
  metricsSnapshot(): PoolMetricsSnapshot
  /** Each request as it completes. */
  onRequest(listener: (request: RequestObserved) => void): Disposer
}
