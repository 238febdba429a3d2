export type {
  HealthCheckDefinition, HealthCheckSource, CheckObservation, CheckStatus, HealthStatus, HealthSummary, HealthChange,
} from './health-check.js'
export { HealthMonitor, type HealthMonitorOptions, type FailoverCallback } from './health-monitor.js'
export { healthGate, HealthGate, type HealthGateOptions, type HealthGateStats } from './health-gate.js'
export { type SpoolOptions, type SpoolStats } from './spool/gate-spool.js'
export { HealthServer, type HealthServerOptions } from './health-server.js'
export { HEALTH_HTTP_DEFAULTS, type HealthHttpLimits, type HealthHttpOptions } from './health-http-options.js'
export { type HealthResponse, type CheckResult, type ResponseStatus } from './health-response.js'
export { GracefulShutdown, type GracefulShutdownOptions, type ShutdownSteps } from './graceful-shutdown.js'
export type { MetricsSource } from './metrics-source.js'
export { scrubSecrets } from './scrub-secrets.js'
export { preciseNow } from './precise-now.js'
export { DependencyUnavailableError, isDependencyUnavailableError, type GateRejection } from './errors/dependency-unavailable-error.js'
