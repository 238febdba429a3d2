import type { DispatchStats } from '../routemq/plugin-api.js'
import type { Disposer } from '../typed-event.js'

/**
 * What the status page reads, as small structural interfaces: the pools live
 * in plugins, which `src/health` does not import, so it reads the `stats`
 * they already expose (a `BrokerPool`, a `ReplicaPool`, a `GeoResolver` fit).
 */

/** One broker as a broker pool's `stats` gives it. */
export interface StatusBroker {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly connected: boolean
  readonly latencyMs: number | undefined
  readonly outstanding: number
  readonly region: string | undefined
  readonly dropped: number
}

/** A broker pool: `BrokerPool`. */
export interface StatusBrokerPool {
  readonly stats: {
    readonly mode: string | undefined
    readonly active: string | undefined
    readonly brokers: readonly StatusBroker[]
    readonly failovers: number
    readonly published: number
    readonly acknowledged: number
    readonly buffered: number
  }
  /** Each publish as a broker acknowledged it or failed it: counted per broker. */
  onRequest(listener: (request: { readonly backend: string; readonly failed: boolean }) => void): Disposer
}

/** One replica as a replica pool's `stats` gives it. */
export interface StatusReplica {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly inRecovery: boolean | undefined
  readonly lagMs: number | undefined
  readonly lagBytes: number | undefined
  readonly p50LatencyMs: number | undefined
  readonly p99LatencyMs: number | undefined
  readonly outstanding: number
  readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
  readonly queries: number
  readonly errors: number
  readonly region: string | undefined
}

/** A replica pool: `ReplicaPool`. */
export interface StatusReplicaPool {
  readonly stats: {
    readonly primary: {
      readonly id: string | undefined
      readonly healthy: boolean
      readonly queries: number
      readonly errors: number
      readonly p50LatencyMs: number | undefined
      readonly p99LatencyMs: number | undefined
      readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
    }
    readonly replicas: readonly StatusReplica[]
    readonly reads: number
    readonly writes: number
    readonly readRetries: number
    readonly fallbacksToPrimary: number
  }
}

/** An address resolver counting lookups: `GeoResolver`. */
export interface StatusLookups {
  readonly stats: { readonly lookups: number; readonly cacheHits: number; readonly reasons: Readonly<Record<string, number>> }
}

/** The application: its lifecycle state and dispatch counters. */
export interface StatusApplication {
  readonly state: string
  readonly stats: DispatchStats
}

/** True for a source whose `stats` list brokers. */
export function isStatusBrokerPool(value: unknown): value is StatusBrokerPool {
  const stats = (value as { stats?: Partial<StatusBrokerPool['stats']> } | null)?.stats
  return Array.isArray(stats?.brokers) && typeof stats.failovers === 'number' && typeof (value as StatusBrokerPool).onRequest === 'function'
}

/** True for a source whose `stats` give a primary and replicas. */
export function isStatusReplicaPool(value: unknown): value is StatusReplicaPool {
  const stats = (value as { stats?: Partial<StatusReplicaPool['stats']> } | null)?.stats
  return Array.isArray(stats?.replicas) && typeof stats.primary === 'object' && stats.primary !== null
}

/** True for a source counting address lookups. */
export function isStatusLookups(value: unknown): value is StatusLookups {
  const stats = (value as { stats?: Partial<StatusLookups['stats']> } | null)?.stats
  return typeof stats?.lookups === 'number' && typeof stats.cacheHits === 'number' && typeof stats.reasons === 'object'
}
