import { DEFAULT_MAX_LAG_MS, type ReplicaPoolOptions } from '../kysely/replica-pool-options.js'
import type { LoadBalancingMetricsOptions } from '../../src/metrics/load-balancing-metrics.js'
import { InvalidOptionError } from '../../src/routemq/errors/invalid-option-error.js'

/** What the Grafana dashboard and the Prometheus alert rules are rendered from. */
export interface MonitoringPlan {
  /** The metrics' name prefix (`metrics.prefix`, default `routemq_`). */
  readonly metricPrefix: string
  /** The replica pool's lag limits, when a database is configured: replicas beyond them get no reads. */
  readonly database: { readonly maxLagSeconds: number; readonly maxLagBytes: number | undefined } | undefined
}

/**
 * The monitoring part of the plan; `undefined` when metrics are off, which
 * the dashboard and rule renderers refuse (`requireMonitoring`).
 *
 * @example
 * planMonitoring({ prefix: 'fleet_' }, { primary: 'postgres://app@db/app', maxLagMs: 5000 })
 */
export function planMonitoring(metrics: LoadBalancingMetricsOptions | false | undefined, database: ReplicaPoolOptions | undefined): MonitoringPlan | undefined {
  if (metrics === false) return undefined
  return {
    metricPrefix: metrics?.prefix ?? 'routemq_',
    database: database && { maxLagSeconds: (database.maxLagMs ?? DEFAULT_MAX_LAG_MS) / 1000, maxLagBytes: database.maxLagBytes },
  }
}

/** The monitoring plan, or an error saying how to turn metrics on. */
export function requireMonitoring(monitoring: MonitoringPlan | undefined, what: string): MonitoringPlan {
  if (!monitoring) {
    throw new InvalidOptionError('metrics', `is false, and ${what} read the app's /metrics: leave out metrics: false (ROUTEMQ_METRICS_ENABLED=false) to render them`)
  }
  return monitoring
}
