import { InvalidOptionError } from '../routemq/plugin-api.js'
import { isFunction, isLogger, required, type OptionShape } from '../routemq/plugin-api.js'
import { HEALTH_HTTP_OPTIONS_SHAPE } from './health-http-options-shape.js'
import { HealthMonitor } from './health-monitor.js'
import { isMetricsSource } from './metrics-source.js'
import type { HealthServerOptions } from './health-server.js'
import { StatusPage } from './status-page.js'

/** The keys and types of `HealthServerOptions`: the HTTP options a `HealthModule` takes as `http`, and what the server serves. */
export const HEALTH_SERVER_OPTIONS_SHAPE: OptionShape<HealthServerOptions> = {
  ...HEALTH_HTTP_OPTIONS_SHAPE,
  monitor: required((value, field) => {
    if (!(value instanceof HealthMonitor)) throw new InvalidOptionError(field, 'must be a HealthMonitor, whose results the endpoints serve')
  }, 'is required: the HealthMonitor whose results /health and /ready serve'),
  metrics: (value, field) => {
    if (value !== undefined && !isMetricsSource(value)) throw new InvalidOptionError(field, 'must be a LoadBalancingMetrics, or left out for no /metrics')
  },
  statusPage: (value, field) => {
    if (value !== undefined && !(value instanceof StatusPage)) throw new InvalidOptionError(field, 'must be a StatusPage, or left out for no /status')
  },
  transportConnected: isFunction('a function returning whether the transport is connected, e.g. () => app.transport?.connected'),
  logger: isLogger,
}
