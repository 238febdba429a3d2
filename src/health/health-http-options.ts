import { InvalidOptionError } from '../routemq/plugin-api.js'
import { MAX_TIMER_MS } from '../routemq/plugin-api.js'

/**
 * How long the health server waits for a client, and how many it serves at
 * once. Probes and Prometheus send one small GET and read the answer at once,
 * so a client slower than this is broken or hostile (slowloris).
 */
export interface HealthHttpLimits {
  /** From connecting (or the end of the previous request) to the end of the request's header. */
  readonly headersTimeoutMs: number
  /** From connecting to the end of the whole request, body included. At least `headersTimeoutMs`. */
  readonly requestTimeoutMs: number
  /** How long a keep-alive connection may wait for its next request. */
  readonly keepAliveTimeoutMs: number
  /** How long a socket may neither send nor read anything, e.g. a client that stops reading its answer. */
  readonly idleTimeoutMs: number
  /** Open connections at most, 2 to 65 536; at the cap the oldest connection without a request in progress is closed to keep one free. */
  readonly maxConnections: number
}

/** Where the health server listens, and its limits. */
export interface HealthHttpOptions extends Partial<HealthHttpLimits> {
  /** Default `'127.0.0.1'`; use `'0.0.0.0'` (or `'::'`) for probes from outside the host, as in Kubernetes. */
  readonly host?: string
  /** Default 9464; 0 picks a free port. */
  readonly port?: number
}

/**
 * The health server's default limits. A kubelet probe gives up after 1 s and
 * Prometheus after its scrape timeout (10 s by default), so a client slower
 * than these is no probe; a handful of probers and scrapers needs a few
 * connections, and a cap of 32 leaves the process its file descriptors
 * whatever connects.
 *
 * @example
 * new HealthModule({ http: { ...HEALTH_HTTP_DEFAULTS, maxConnections: 64 } })
 */
export const HEALTH_HTTP_DEFAULTS: HealthHttpLimits = Object.freeze({
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  // A /metrics answer is silent while it is collected: as long as Prometheus's default scrape timeout.
  idleTimeoutMs: 10_000,
  maxConnections: 32,
})

/** The limits `options` ask for, defaults filled in; `InvalidOptionError` naming `health.http.<key>` for a wrong one. */
export function resolveHealthHttpLimits(options: Partial<HealthHttpLimits>): HealthHttpLimits {
  const limits: { -readonly [K in keyof HealthHttpLimits]: number } = { ...HEALTH_HTTP_DEFAULTS }
  for (const key of Object.keys(HEALTH_HTTP_DEFAULTS) as (keyof HealthHttpLimits)[]) {
    const value = options[key]
    if (value === undefined) continue
    checkHealthHttpLimit(key, value)
    limits[key] = value
  }
  if (limits.headersTimeoutMs > limits.requestTimeoutMs) {
    throw new InvalidOptionError(
      'health.http.headersTimeoutMs',
      `is ${limits.headersTimeoutMs}, longer than requestTimeoutMs (${limits.requestTimeoutMs}), which includes the header; shorten it or raise requestTimeoutMs`,
    )
  }
  return Object.freeze(limits)
}

/**
 * Connections the cap allows at least: at the cap one is kept free for the
 * next client (`capConnections` closes the longest-waiting one when an arrival
 * takes the last slot), so a cap of 1 leaves none to serve a kept-alive probe
 * while the next one connects, and probes alternate between an answer and a
 * closed socket. Two is one in use and one free.
 */
export const MIN_HEALTH_CONNECTIONS = 2
/** Connections the cap allows at most: each is a file descriptor, and more than this is no cap on any host's descriptor limit. */
export const MAX_HEALTH_CONNECTIONS = 65_536

/** One limit on its own; `InvalidOptionError` naming `field` (default `health.http.<key>`) when it is no valid value. */
export function checkHealthHttpLimit(key: keyof HealthHttpLimits, value: unknown, field = `health.http.${key}`): void {
  if (key === 'maxConnections') {
    // Node's own cap takes any number; a fraction or zero would be a typo that shuts every probe out.
    if (!Number.isSafeInteger(value) || (value as number) < MIN_HEALTH_CONNECTIONS || (value as number) > MAX_HEALTH_CONNECTIONS) {
      throw new InvalidOptionError(
        field,
        `must be a whole number from ${MIN_HEALTH_CONNECTIONS} to ${MAX_HEALTH_CONNECTIONS}, e.g. 32: one connection is kept free for the next probe, so a cap needs one more`,
      )
    }
  } else if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_TIMER_MS) {
    // 0 would mean "no timeout" to Node: the hole these limits close.
    throw new InvalidOptionError(field, `must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}; default ${HEALTH_HTTP_DEFAULTS[key]}`)
  }
}
