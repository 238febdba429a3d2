import type { BackendSet } from '../../src/balancing/backend-set.js'
import type { LatencyWindow } from '../../src/balancing/latency-window.js'
import type { HealthCheckDefinition } from '../../src/health/health-check.js'
import type { PoolMetricsSnapshot } from '../../src/metrics/measured-pool.js'
import type { Disposer } from '../../src/typed-event.js'
import { isNoReplicaAvailableError } from './errors/no-replica-available-error.js'
import { isPrimaryUnavailableError } from './errors/primary-unavailable-error.js'
import type { PgBackend } from './pg-backend.js'
import type { PrimaryTracker } from './primary-tracker.js'
import type { QueryKind } from './query-kind.js'
import type { ReplicaProber } from './replica-prober.js'

/** Which server served a single statement (not one inside a transaction or a stream), for tracing. */
export interface QueryServed {
  readonly backend: string
  readonly role: 'primary' | 'replica'
  readonly kind: QueryKind
  readonly durationMs: number
  /** Set when the query failed. */
  readonly error?: unknown
}

/** A replica as the last probe saw it. */
export interface ReplicaStatus {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly inRecovery: boolean | undefined
  readonly lagMs: number | undefined
  readonly lagBytes: number | undefined
  readonly latencyMs: number | undefined
  /** Median of the last 1024 queries' durations. */
  readonly p50LatencyMs: number | undefined
  /** 99th percentile of the last 1024 queries' durations. */
  readonly p99LatencyMs: number | undefined
  readonly outstanding: number
  readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
  readonly queries: number
  readonly errors: number
  readonly region: string | undefined
}

/** Counters and states, for metrics. */
export interface ReplicaPoolStats {
  readonly primary: {
    readonly id: string | undefined
    readonly healthy: boolean
    readonly queries: number
    readonly errors: number
    readonly p50LatencyMs: number | undefined
    readonly p99LatencyMs: number | undefined
    /** The current primary's connection pool; zeros while none is known. */
    readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
  }
  readonly replicas: readonly ReplicaStatus[]
  readonly reads: number
  readonly writes: number
  readonly readRetries: number
  readonly fallbacksToPrimary: number
  /** Reads that had to see an earlier write of their scope (or a position their message carried), wherever they went. */
  readonly consistentReads: number
  /** Of those, reads a replica that had replayed the write served. */
  readonly consistentReadsOnReplicas: number
  /** Times the primary was asked for its WAL position because a read (or a publish) needed a write's. */
  readonly positionQuestions: number
}

/** The pool's own counters. */
export type Counter = 'reads' | 'writes' | 'readRetries' | 'fallbacksToPrimary' | 'consistentReads' | 'consistentReadsOnReplicas' | 'positionQuestions'

/** What a `ReplicaPool` reports from: its parts and counters, read at the moment of asking. */
export interface PoolInsides {
  readonly primary: PrimaryTracker
  readonly primaryBackends: readonly PgBackend[]
  readonly replicas: BackendSet<PgBackend>
  readonly prober: ReplicaProber
  readonly primaryLatencies: LatencyWindow
  readonly primaryQueries: number
  readonly primaryErrors: number
  readonly counts: Readonly<Record<Counter, number>>
  /** Reads sent to the primary because the replicas they were tried on failed. */
  readonly failedOverReads: number
}

/** `pool.stats`: per-server state, lag, latency and connections, and the pool's counters. */
export function statsOf(pool: PoolInsides): ReplicaPoolStats {
  const { primary, prober } = pool
  return Object.freeze({
    primary: {
      id: primary.current?.id,
      healthy: primary.healthy,
      queries: pool.primaryQueries,
      errors: pool.primaryErrors,
      p50LatencyMs: pool.primaryLatencies.percentile(0.5),
      p99LatencyMs: pool.primaryLatencies.percentile(0.99),
      connections: connectionCounts(primary.current?.timed.raw),
    },
    replicas: pool.replicas.backends.map((backend) => {
      const probe = prober.of(backend)
      return {
        id: backend.id,
        state: backend.state,
        inRecovery: probe.inRecovery,
        lagMs: probe.lagMs,
        lagBytes: probe.lagBytes,
        latencyMs: backend.latencyMs,
        p50LatencyMs: probe.latencies.percentile(0.5),
        p99LatencyMs: probe.latencies.percentile(0.99),
        outstanding: backend.outstanding,
        connections: connectionCounts(backend.target.timed.raw),
        queries: probe.queries,
        errors: probe.errors,
        region: backend.region,
      }
    }),
    ...pool.counts,
  })
}

/** The primary and replicas up or down, lag, latency quantiles, and reads moved to another server after a failure. */
export function metricsSnapshotOf(pool: PoolInsides): PoolMetricsSnapshot {
  const { primary, prober } = pool
  const backends: PoolMetricsSnapshot['backends'][number][] = pool.primaryBackends.map((candidate) => ({
    id: candidate.id,
    up: candidate === primary.current && primary.healthy,
    ...(candidate === primary.current ? latencySeconds(pool.primaryLatencies) : {}),
  }))
  for (const backend of pool.replicas.backends) {
    const probe = prober.of(backend)
    backends.push({
      id: backend.id,
      up: backend.state === 'healthy' && prober.readable.includes(backend),
      ...latencySeconds(probe.latencies),
      ...(probe.lagMs !== undefined ? { lagSeconds: probe.lagMs / 1000 } : {}),
      ...(probe.lagBytes !== undefined ? { lagBytes: probe.lagBytes } : {}),
    })
  }
  // Not every fallback to the primary: a pool without replicas, or with every replica lagging, sends reads there with nothing failing.
  return { backends, failovers: pool.counts.readRetries + pool.failedOverReads }
}

/**
 * The pool's checks, reading what its own probes found (no extra query),
 * run again at once whenever `watch` reports a change:
 * - `primary` (critical): a primary accepts writes. A write failing with
 *   `PrimaryUnavailableError` counts as its outage, for `healthGate`.
 * - `replicas` (not critical): at least one replica can serve reads
 *   (healthy and within the lag limits); `NoReplicaAvailableError` is its outage.
 * - `replica/<id>` (not critical): that replica is healthy and within the lag limits.
 */
export function replicaPoolChecks(pool: PoolInsides, watch: (recheck: () => void) => Disposer, intervalMs: number): readonly HealthCheckDefinition[] {
  const { primary, prober } = pool
  const common = { componentType: 'datastore', rise: 1, fall: 1, intervalMs, watch } as const
  const checks: HealthCheckDefinition[] = [
    {
      ...common,
      name: 'primary',
      critical: true,
      isOutage: isPrimaryUnavailableError,
      check: async () => {
        // A query that just lost the primary started a probe: answer from its result, not from before it.
        await primary.probing
        if (!primary.healthy) throw new Error(`no primary accepts writes: ${primary.error ?? 'not found yet'}`)
      },
    },
  ]
  if (pool.replicas.backends.length === 0) return checks
  checks.push({
    ...common,
    name: 'replicas',
    critical: false,
    isOutage: isNoReplicaAvailableError,
    check: () => {
      // The prober's readable set is about lag; a replica whose probes fail keeps its last lag, so health decides too.
      const readable = prober.readable.filter((backend) => backend.state !== 'unhealthy').length
      if (readable === 0) throw new Error('no replica is healthy and within the lag limits')
      return { observedValue: readable, observedUnit: 'replicas' }
    },
  })
  for (const backend of pool.replicas.backends) {
    checks.push({
      ...common,
      name: `replica/${backend.id}`,
      critical: false,
      check: () => {
        const probe = prober.of(backend)
        if (backend.state === 'unknown') return { pending: true }
        if (backend.state === 'unhealthy') throw new Error('its probes fail')
        if (probe.inRecovery === false) throw new Error('it is not in recovery (promoted?), so it takes no reads')
        if (!prober.readable.includes(backend)) throw new Error(`it is behind by ${Math.round(probe.lagMs ?? 0)} ms / ${probe.lagBytes ?? '?'} bytes, past the lag limits`)
        return probe.lagMs === undefined ? undefined : { observedValue: Math.round(probe.lagMs), observedUnit: 'ms' }
      },
    })
  }
  return checks
}

function latencySeconds(window: LatencyWindow): { p50Seconds?: number; p99Seconds?: number } {
  const p50 = window.percentile(0.5)
  const p99 = window.percentile(0.99)
  return p50 === undefined || p99 === undefined ? {} : { p50Seconds: p50 / 1000, p99Seconds: p99 / 1000 }
}

function connectionCounts(pool: { totalCount: number; idleCount: number; waitingCount: number } | undefined): ReplicaStatus['connections'] {
  return pool ? { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } : { total: 0, idle: 0, waiting: 0 }
}
