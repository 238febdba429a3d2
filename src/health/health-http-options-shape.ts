import { matching, wholeNumber, type OptionCheck, type OptionShape } from '../routemq/plugin-api.js'
import { checkHealthHttpLimit, type HealthHttpLimits, type HealthHttpOptions } from './health-http-options.js'

/** One limit, checked as `resolveHealthHttpLimits` checks it, so that both say the same. */
function httpLimit(key: keyof HealthHttpLimits): OptionCheck {
  return (value, field) => {
    if (value !== undefined) checkHealthHttpLimit(key, value, field)
  }
}

/**
 * The keys and types of `HealthHttpOptions`: `health.http` of a
 * `HealthModule`, and the listening part of a `HealthServer`'s options.
 */
export const HEALTH_HTTP_OPTIONS_SHAPE: OptionShape<HealthHttpOptions> = {
  host: matching(/^[\w.:%[\]-]+$/, "a host name or address, e.g. '0.0.0.0'"),
  port: wholeNumber(0, 65_535),
  headersTimeoutMs: httpLimit('headersTimeoutMs'),
  requestTimeoutMs: httpLimit('requestTimeoutMs'),
  keepAliveTimeoutMs: httpLimit('keepAliveTimeoutMs'),
  idleTimeoutMs: httpLimit('idleTimeoutMs'),
  maxConnections: httpLimit('maxConnections'),
}
