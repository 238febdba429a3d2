import { InvalidOptionError } from '../../src/routemq/plugin-api.js'

/** What the Grafana dashboard and the Prometheus alert rules are rendered from. */
export interface MonitoringPlan {
  /** The metrics' name prefix (`metrics.prefix`, default `routemq_`). */
  readonly metricPrefix: string
  /** The replica pool's lag limits, when a database is configured: replicas beyond them get no reads. */
  readonly database: { readonly maxLagSeconds: number; readonly maxLagBytes: number | undefined } | undefined
}

/** The monitoring plan, or an error saying how to turn metrics on. */
export function requireMonitoring(monitoring: MonitoringPlan | undefined, what: string): MonitoringPlan {
  if (!monitoring) {
    throw new InvalidOptionError('metrics', `is false, and ${what} read the app's /metrics: leave out metrics: false (ROUTEMQ_METRICS_ENABLED=false) to render them`)
  }
  return monitoring
}
