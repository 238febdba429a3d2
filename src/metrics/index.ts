export {
  LoadBalancingMetrics, type LoadBalancingMetricsOptions, type MeasuredApplication, type MeasuredGate,
  type MeasuredLookups, type MeasuredGeoGate, isMeasuredLookups, isMeasuredGeoGate,
} from './load-balancing-metrics.js'
export type { MeasuredPool, PoolMetricsSnapshot, BackendMetrics, RequestObserved } from './measured-pool.js'
export { healthScore, HealthScoreWindow, type HealthScoreInputs } from './health-score.js'
