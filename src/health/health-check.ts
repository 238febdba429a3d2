import type { HealthState } from '../balancing/health-tracker.js'
import type { Disposer } from '../typed-event.js'

/** What a passing check may report besides passing, for `/health` bodies. */
export interface CheckObservation {
  /** A measured value, e.g. a latency or a replication lag. */
  readonly observedValue?: number | string | boolean
  /** Its unit, e.g. `'ms'`, `'s'`, `'bytes'`. */
  readonly observedUnit?: string
  /**
   * The dependency has not been checked yet (a pool that has not connected):
   * the run neither passes nor fails, and the state stays as it was.
   */
  readonly pending?: boolean
}

/**
 * One dependency the `HealthMonitor` watches. The check passes when `check`
 * returns or resolves, and fails when it throws, rejects or outlives
 * `timeoutMs` (its `signal` is then aborted).
 *
 * @example
 * monitor.register({
 *   name: 'billing-api',
 *   check: async (signal) => { const r = await fetch(url, { signal }); if (!r.ok) throw new Error(`HTTP ${r.status}`) },
 *   intervalMs: 5000, timeoutMs: 1000, critical: false,
 * })
 */
export interface HealthCheckDefinition {
  /** Unique; letters, digits and `.`, `_`, `-`, `/`, `:`, `[`, `]`. Gates name dependencies by it. */
  readonly name: string
  readonly check: (signal: AbortSignal) => CheckObservation | void | Promise<CheckObservation | void>
  /** Time between two runs, from the end of one to the start of the next. Default 5000 ms. */
  readonly intervalMs?: number
  /** A run that takes longer fails and its signal is aborted. Default 2000 ms. */
  readonly timeoutMs?: number
  /** Passing runs in a row that make an unhealthy check healthy. Default 2 (the first result decides at once). */
  readonly rise?: number
  /** Failing runs in a row that make a healthy check unhealthy. Default 2. */
  readonly fall?: number
  /** A critical check that is not healthy fails readiness; a non-critical one only degrades. Default true. */
  readonly critical?: boolean
  /** The `componentType` of `/health` bodies, e.g. `'datastore'`, `'mqtt-broker'`. Default `'component'`. */
  readonly componentType?: string
  /**
   * True for an error that work on this dependency failed with because the
   * dependency is down (e.g. `isPrimaryUnavailableError`). A `hold` gate
   * holds a message whose handler failed so, and runs it again once the
   * check has passed after the failure.
   */
  readonly isOutage?: (error: unknown) => boolean
  /**
   * Lets the dependency say when it may have changed (a pool's own probes
   * saw it go down): the monitor runs the check at once instead of waiting
   * for the interval. Returns the disposer of that subscription.
   */
  readonly watch?: (recheck: () => void) => Disposer
}

/** Something that knows which health checks describe it: a broker pool, a replica pool. */
export interface HealthCheckSource {
  healthChecks(): readonly HealthCheckDefinition[]
}

/** One check as the monitor last saw it. */
export interface CheckStatus {
  readonly name: string
  readonly critical: boolean
  readonly componentType: string
  readonly state: HealthState
  /** Why the last run failed, with any URL removed; `undefined` after a pass. */
  readonly lastError: string | undefined
  /** Duration of the last run, in ms. */
  readonly latencyMs: number | undefined
  /** When the last run ended (epoch ms). */
  readonly checkedAt: number | undefined
  /** When the state last changed (epoch ms). */
  readonly changedAt: number | undefined
  readonly observation: CheckObservation | undefined
}

/**
 * `healthy`: every check healthy; `degraded`: a non-critical check is
 * unhealthy; `unhealthy`: a critical check is unhealthy or not yet known.
 */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy'

/** What `HealthMonitor.summary()` returns. */
export interface HealthSummary {
  readonly status: HealthStatus
  readonly checks: readonly CheckStatus[]
}

/** A check turned healthy or unhealthy. */
export interface HealthChange {
  readonly name: string
  readonly critical: boolean
  readonly from: HealthState
  readonly to: HealthState
  /** The last error, on the way down. */
  readonly error: string | undefined
  readonly at: number
}
