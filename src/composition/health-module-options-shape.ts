import { LoadBalancingMetrics } from '../metrics/load-balancing-metrics.js'
import { LOAD_BALANCING_METRICS_OPTIONS_SHAPE } from '../metrics/load-balancing-metrics-options-shape.js'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import { byKind, checkOptions, listOf, shapeOf, type OptionShape } from '../routemq/plugin-api.js'
import { GRACEFUL_SHUTDOWN_OPTIONS_SHAPE } from '../health/graceful-shutdown-options-shape.js'
import { HEALTH_CHECK_DEFINITION_SHAPE } from '../health/health-check-definition-shape.js'
import { HEALTH_HTTP_OPTIONS_SHAPE } from '../health/health-http-options-shape.js'
import { HealthMonitor } from '../health/health-monitor.js'
import { STATUS_PAGE_OPTIONS_SHAPE } from '../health/status-page-options-shape.js'
import type { HealthModuleOptions } from './health-module.js'

/** The health options a `LoadBalancingModule` takes from you; it fills in `monitor`, `sources` and `metrics`. */
export const HEALTH_OPTIONS_SHAPE: OptionShape<Omit<HealthModuleOptions, 'monitor' | 'sources' | 'metrics'>> = {
  checks: listOf(shapeOf(HEALTH_CHECK_DEFINITION_SHAPE)),
  http: byKind('must be { host?, port?, headersTimeoutMs?, requestTimeoutMs?, keepAliveTimeoutMs?, idleTimeoutMs?, maxConnections? }, or false for no endpoints', { false: true, object: shapeOf(HEALTH_HTTP_OPTIONS_SHAPE) }),
  shutdown: byKind('must be { signals?, drainDelayMs?, exit? }, or false to leave signals to you', { false: true, object: shapeOf(GRACEFUL_SHUTDOWN_OPTIONS_SHAPE) }),
  statusPage: byKind('must be { refreshMs? }, or false for no /status', { false: true, object: shapeOf(STATUS_PAGE_OPTIONS_SHAPE) }),
}

/** The keys and types of `HealthModuleOptions` at every depth. */
export const HEALTH_MODULE_OPTIONS_SHAPE: OptionShape<HealthModuleOptions> = {
  ...HEALTH_OPTIONS_SHAPE,
  monitor: (value, field) => {
    if (value !== undefined && !(value instanceof HealthMonitor)) throw new InvalidOptionError(field, 'must be a HealthMonitor, or left out for one of its own')
  },
  sources: listOf((value, field) => {
    if (typeof (value as { healthChecks?: unknown } | null)?.healthChecks !== 'function') {
      throw new InvalidOptionError(field, 'must have healthChecks(), such as a BrokerPool, a ReplicaPool or a GeoResolver')
    }
  }),
  metrics: byKind('must be metrics options, a LoadBalancingMetrics, or false for none', {
    false: true,
    object: (value, field) => {
      if (!(value instanceof LoadBalancingMetrics)) checkOptions(value, LOAD_BALANCING_METRICS_OPTIONS_SHAPE, field)
    },
  }),
}
