import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { DispatchStats } from '../routemq/plugin-api.js'
import { checkOptions } from '../routemq/plugin-api.js'
import type { Disposer } from '../typed-event.js'
import type { MeasuredGateStats, MeasuredHealth } from './measured-health.js'
import { registerMessageMetrics } from './message-metrics.js'
import { registerSpoolMetrics } from './spool-metrics.js'
import { healthScore, HealthScoreWindow } from './health-score.js'
import { LOAD_BALANCING_METRICS_OPTIONS_SHAPE } from './load-balancing-metrics-options-shape.js'
import type { MeasuredPool, PoolMetricsSnapshot } from './measured-pool.js'

/** Options of `LoadBalancingMetrics`. */
export interface LoadBalancingMetricsOptions {
  /** Where the metrics are registered. Default: a registry of their own (never prom-client's global one). */
  readonly registry?: Registry
  /** Put before every name. Default `'routemq_'`. */
  readonly prefix?: string
  /** Also collect prom-client's process and Node.js metrics (CPU, memory, event loop lag, ...), unless the registry has them already. Default true. */
  readonly defaultMetrics?: boolean
}

/** Anything with dispatch counters: an `Application`. */
export interface MeasuredApplication {
  readonly stats: DispatchStats
}

/** Anything with gate counters: a `HealthGate`. */
export interface MeasuredGate {
  readonly dependencies: readonly string[]
  readonly stats: MeasuredGateStats
}

/** Anything that counts address lookups by outcome: a `GeoResolver`. */
export interface MeasuredLookups {
  readonly stats: { readonly lookups: number; readonly cacheHits: number; readonly reasons: Readonly<Record<string, number>> }
}

/** Anything that turns messages away by where they come from: a `geoGate`. */
export interface MeasuredGeoGate {
  readonly name: string
  readonly stats: { readonly passed: number; readonly blockedBy: Readonly<Record<string, number>> }
}

/** True for middleware `observeGeoGate` can read (found on routes by the `HealthModule`). */
export function isMeasuredGeoGate(value: unknown): value is MeasuredGeoGate {
  const gate = value as Partial<MeasuredGeoGate> | null
  return typeof gate?.name === 'string' && typeof gate.stats?.passed === 'number' && typeof gate.stats.blockedBy === 'object'
}

/** True for a source `observeLookups` can read. */
export function isMeasuredLookups(value: unknown): value is MeasuredLookups {
  const source = value as Partial<MeasuredLookups> | null
  return typeof source?.stats?.lookups === 'number' && typeof source.stats.cacheHits === 'number' && typeof source.stats.reasons === 'object'
}

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/**
 * The Prometheus metrics of the application, its pools, gates and health
 * checks, in a prom-client registry (served on `/metrics` by `HealthServer`).
 * Figures the pools already count are read at scrape time; only per-request
 * counters and durations are recorded as requests complete.
 *
 * @example
 * const metrics = new LoadBalancingMetrics()
 * metrics.observePool(brokerPool)
 * metrics.observePool(replicaPool)
 * await metrics.registry.metrics() // Prometheus text
 */
export class LoadBalancingMetrics {
  readonly registry: Registry
  readonly #pools = new Set<MeasuredPool>()
  readonly #apps = new Set<MeasuredApplication>()
  readonly #gates = new Set<MeasuredGate>()
  readonly #monitors = new Set<MeasuredHealth>()
  readonly #lookups = new Set<MeasuredLookups>()
  readonly #geoGates = new Set<MeasuredGeoGate>()
  readonly #requests: Counter<'pool' | 'backend'>
  readonly #failures: Counter<'pool' | 'backend'>
  readonly #duration: Histogram<'pool' | 'backend'>
  readonly #score: HealthScoreWindow

  constructor(options: LoadBalancingMetricsOptions = {}) {
    checkOptions(options, LOAD_BALANCING_METRICS_OPTIONS_SHAPE, 'metrics')
    const registry = (this.registry = options.registry ?? new Registry())
    const p = options.prefix ?? 'routemq_'
    const registers = [registry]
    // A registry of yours may collect them already; registering them twice would throw.
    if ((options.defaultMetrics ?? true) && registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
      collectDefaultMetrics({ register: registry })
      // Gauges named like counters, which promtool's lint refuses; each is the sum() of the gauge named without _total, kept.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name)
    }
    this.#score = new HealthScoreWindow(() => this.#totalFailovers())
    const pools = this.#pools
    const apps = this.#apps
    const gates = this.#gates
    const monitors = this.#monitors
    const lookups = this.#lookups
    const geoGates = this.#geoGates
    const score = this.#score

    this.#requests = new Counter({
      name: `${p}pool_requests_total`, help: 'Requests served by a backend: publishes acknowledged or not by a broker, statements run on a database server.',
      labelNames: ['pool', 'backend'], registers,
    })
    this.#failures = new Counter({
      name: `${p}pool_request_failures_total`, help: 'Requests that failed on a backend.', labelNames: ['pool', 'backend'], registers,
    })
    this.#duration = new Histogram({
      name: `${p}pool_request_duration_seconds`, help: 'How long requests took on a backend, in seconds.',
      labelNames: ['pool', 'backend'], buckets: DURATION_BUCKETS, registers,
    })
    new Counter({
      name: `${p}pool_failovers_total`, help: 'Moves to another backend after a failure: broker failovers, database reads moved to another server after a failure.',
      labelNames: ['pool'], registers,
      collect() {
        this.reset()
        for (const pool of pools) this.inc({ pool: pool.metricsLabel }, pool.metricsSnapshot().failovers)
      },
    })
    new Counter({
      name: `${p}pool_backend_dropped_messages_total`,
      help: 'Messages a broker reports it dropped after accepting them (a client queue or in-flight limit reached), since the pool first heard from it.',
      labelNames: ['pool', 'backend'], registers,
      collect() {
        this.reset()
        for (const pool of pools) {
          for (const b of pool.metricsSnapshot().backends) if (b.dropped !== undefined) this.inc({ pool: pool.metricsLabel, backend: b.id }, b.dropped)
        }
      },
    })
    new Counter({
      name: `${p}mqtt_sessions_adopted_total`, help: 'Persistent sessions of app instances that went away, drained and ended by this one.',
      labelNames: ['pool'], registers,
      collect() {
        this.reset()
        for (const pool of pools) {
          const adopted = pool.metricsSnapshot().sessionsAdopted
          if (adopted !== undefined) this.inc({ pool: pool.metricsLabel }, adopted)
        }
      },
    })
    /** A gauge read from every observed pool's snapshot at each scrape. */
    const poolGauge = (
      name: string,
      help: string,
      labelNames: readonly string[],
      read: (label: string, snapshot: PoolMetricsSnapshot, set: (labels: Record<string, string>, value: number) => void) => void,
    ): void => {
      new Gauge({
        name: `${p}${name}`, help, labelNames, registers,
        collect() {
          this.reset()
          for (const pool of pools) read(pool.metricsLabel, pool.metricsSnapshot(), (labels, value) => this.set(labels, value))
        },
      })
    }
    poolGauge('pool_backend_up', 'Whether a backend is healthy and taking requests (1) or not (0).', ['pool', 'backend'], (pool, snapshot, set) => {
      for (const b of snapshot.backends) set({ pool, backend: b.id }, b.up ? 1 : 0)
    })
    poolGauge('replica_lag_seconds', 'How far a replica is behind its primary, in seconds, as last measured.', ['pool', 'backend'], (pool, snapshot, set) => {
      for (const b of snapshot.backends) if (b.lagSeconds !== undefined) set({ pool, backend: b.id }, b.lagSeconds)
    })
    poolGauge('replica_lag_bytes', 'How far a replica is behind its primary, in bytes of WAL, as last measured.', ['pool', 'backend'], (pool, snapshot, set) => {
      for (const b of snapshot.backends) if (b.lagBytes !== undefined) set({ pool, backend: b.id }, b.lagBytes)
    })
    // Two gauges, not one with a `quantile` label: that label belongs to summaries, whose quantiles Prometheus reads with _sum and _count.
    poolGauge('pool_backend_latency_p50_seconds', 'The median of the last 1024 query durations on a database server, in seconds, as the pool routes by.', ['pool', 'backend'], (pool, snapshot, set) => {
      for (const b of snapshot.backends) if (b.p50Seconds !== undefined) set({ pool, backend: b.id }, b.p50Seconds)
    })
    poolGauge('pool_backend_latency_p99_seconds', 'The 99th percentile of the last 1024 query durations on a database server, in seconds.', ['pool', 'backend'], (pool, snapshot, set) => {
      for (const b of snapshot.backends) if (b.p99Seconds !== undefined) set({ pool, backend: b.id }, b.p99Seconds)
    })
    poolGauge('offline_buffer_messages', 'Publishes taken and not yet acknowledged by a broker (buffered while none is connected, or in flight).', ['pool'], (pool, snapshot, set) => {
      if (snapshot.offlineBuffer) set({ pool }, snapshot.offlineBuffer.messages)
    })
    poolGauge('offline_buffer_bytes', 'Payload bytes of the publishes counted by offline_buffer_messages.', ['pool'], (pool, snapshot, set) => {
      if (snapshot.offlineBuffer) set({ pool }, snapshot.offlineBuffer.bytes)
    })
    registerMessageMetrics(p, registers, apps, gates)
    registerSpoolMetrics(p, registers, gates)
    new Counter({
      name: `${p}geo_lookups_total`, help: 'GeoIP lookups by outcome: found, not-found (not in the database), empty, invalid, private, reserved.', labelNames: ['reason'], registers,
      collect() {
        this.reset()
        for (const source of lookups) for (const [reason, count] of Object.entries(source.stats.reasons)) this.inc({ reason }, count)
      },
    })
    new Counter({
      name: `${p}geo_lookup_cache_hits_total`, help: 'GeoIP lookups answered from the address cache.', registers,
      collect() {
        this.reset()
        for (const source of lookups) this.inc(source.stats.cacheHits)
      },
    })
    new Counter({
      name: `${p}geo_gate_blocked_total`, help: 'Messages a geoGate turned away, by reason (country, continent, region, not-allowed, unknown-location).', labelNames: ['gate', 'reason'], registers,
      collect() {
        this.reset()
        for (const gate of geoGates) for (const [reason, count] of Object.entries(gate.stats.blockedBy)) this.inc({ gate: gate.name, reason }, count)
      },
    })
    new Counter({
      name: `${p}geo_gate_passed_total`, help: 'Messages a geoGate let through.', labelNames: ['gate'], registers,
      collect() {
        this.reset()
        for (const gate of geoGates) this.inc({ gate: gate.name }, gate.stats.passed)
      },
    })
    new Gauge({
      name: `${p}health_check_up`, help: 'Whether a health check is healthy (1) or unhealthy or not yet known (0).', labelNames: ['check', 'critical'], registers,
      collect() {
        this.reset()
        for (const monitor of monitors) {
          for (const check of monitor.summary().checks) this.set({ check: check.name, critical: String(check.critical) }, check.state === 'healthy' ? 1 : 0)
        }
      },
    })
    new Gauge({
      name: `${p}health_check_duration_seconds`, help: "How long a health check's last run took, in seconds.", labelNames: ['check'], registers,
      collect() {
        this.reset()
        for (const monitor of monitors) {
          for (const check of monitor.summary().checks) if (check.latencyMs !== undefined) this.set({ check: check.name }, check.latencyMs / 1000)
        }
      },
    })
    new Gauge({
      name: `${p}health_score`,
      help: 'From 0 to 1 over the last minute: share of pool requests that succeeded, less up to 0.2 for slowness (0.02 per 100 ms mean) and up to 0.3 for failovers (0.05 each).',
      registers,
      collect() {
        this.set(healthScore(score.inputs()))
      },
    })
  }

  /** Counts a pool's requests and reads its state at each scrape. The disposer stops both. */
  observePool(pool: MeasuredPool): Disposer {
    this.#pools.add(pool)
    const label = pool.metricsLabel
    const off = pool.onRequest(({ backend, durationMs, failed }) => {
      const labels = { pool: label, backend }
      this.#requests.inc(labels)
      if (failed) this.#failures.inc(labels)
      this.#duration.observe(labels, durationMs / 1000)
      this.#score.record(durationMs, failed)
    })
    return () => {
      off()
      this.#pools.delete(pool)
    }
  }

  /** Reads an application's message counters at each scrape. */
  observeApplication(app: MeasuredApplication): Disposer {
    this.#apps.add(app)
    return () => this.#apps.delete(app)
  }

  /** Reads a health gate's counters at each scrape. */
  observeGate(gate: MeasuredGate): Disposer {
    this.#gates.add(gate)
    return () => this.#gates.delete(gate)
  }

  /** Reads a GeoIP resolver's lookup counters at each scrape. */
  observeLookups(source: MeasuredLookups): Disposer {
    this.#lookups.add(source)
    return () => this.#lookups.delete(source)
  }

  /** Reads a geoGate's counters at each scrape. */
  observeGeoGate(gate: MeasuredGeoGate): Disposer {
    this.#geoGates.add(gate)
    return () => this.#geoGates.delete(gate)
  }

  /** Reads a monitor's check states at each scrape. */
  observeHealth(monitor: MeasuredHealth): Disposer {
    this.#monitors.add(monitor)
    return () => this.#monitors.delete(monitor)
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics()
  }

  #totalFailovers(): number {
    let total = 0
    for (const pool of this.#pools) total += pool.metricsSnapshot().failovers
    return total
  }
}
