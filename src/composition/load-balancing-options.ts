import { resolveBrokerPoolOptions, type BrokerPoolOptions } from '../../plugins/mqtt/broker-pool-options.js'
import { resolveReplicaPoolOptions, type ReplicaPoolOptions } from '../../plugins/kysely/replica-pool-options.js'
import { GeoResolver, type GeoResolverOptions } from '../../plugins/geoip/geo-resolver.js'
import { HealthModule, type HealthModuleOptions } from '../health/health-module.js'
import type { LoadBalancingMetricsOptions } from '../metrics/load-balancing-metrics.js'
import { InvalidOptionError, withFieldPrefix } from '../routemq/errors/invalid-option-error.js'
import type { Logger } from '../routemq/logger.js'

/** The database part: the replica pool's options, and whether to migrate at start. */
export interface DatabaseOptions extends ReplicaPoolOptions {
  /** Run the package's migrations (the replication heartbeat table) on the primary at start. Default false. */
  readonly migrate?: boolean
}

/** The health part: `HealthModule`'s options without what the module fills in. */
export type HealthOptions = Omit<HealthModuleOptions, 'sources' | 'metrics' | 'monitor'>

/**
 * Everything `LoadBalancingModule` can build. Each part is optional and only
 * the parts given are built and started; at least one of `mqtt`, `database`
 * and `geo` is needed.
 */
export interface LoadBalancingOptions {
  /** Brokers: a `BrokerPool` becomes the application's transport. */
  readonly mqtt?: BrokerPoolOptions
  /** PostgreSQL: a `ReplicaPool` and a Kysely instance over it for repositories. */
  readonly database?: DatabaseOptions
  /** GeoIP: a `GeoResolver` for `geoRegion()`, `geoGate()` and `DeviceRedirects`. */
  readonly geo?: GeoResolverOptions
  /** Health checks, `/health`, `/ready`, `/metrics` and graceful shutdown; `false` for none. Default `{}`. */
  readonly health?: HealthOptions | false
  /** Prometheus metrics on `/metrics`; `false` for none. Default `{}`. */
  readonly metrics?: LoadBalancingMetricsOptions | false
  /** Default: the application's logger. */
  readonly logger?: Logger
}

const PARTS = ['mqtt', 'database', 'geo', 'health', 'metrics', 'logger'] as const

/**
 * Checks the whole options tree without connecting anywhere or opening a
 * file; every error is an `InvalidOptionError` naming the field
 * (`database.replicas[1].url`, `geo.rules[0].countries[2]`).
 *
 * @example
 * validateLoadBalancingOptions({ mqtt: { brokers: ['mqtt://b1:1883'] }, database: { primary: 'postgres://app@db:5432/app' } })
 */
export function validateLoadBalancingOptions(options: LoadBalancingOptions): LoadBalancingOptions {
  if (!options || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError('loadBalancing', 'pass { mqtt?, database?, geo?, health?, metrics? }')
  }
  for (const key of Object.keys(options)) {
    if (!(PARTS as readonly string[]).includes(key)) throw new InvalidOptionError(key, `is not an option; the options are ${PARTS.join(', ')}`)
  }
  if (options.mqtt === undefined && options.database === undefined && options.geo === undefined) {
    throw new InvalidOptionError('loadBalancing', 'configure at least one of mqtt, database and geo')
  }
  if (options.mqtt !== undefined) withFieldPrefix('mqtt', () => resolveBrokerPoolOptions(options.mqtt!, 'validation'))
  const database = options.database === undefined ? undefined : withFieldPrefix('database', () => resolveReplicaPoolOptions(options.database!))
  if (options.database?.migrate !== undefined && typeof options.database.migrate !== 'boolean') {
    throw new InvalidOptionError('database.migrate', 'must be true or false')
  }
  if (options.geo !== undefined) {
    GeoResolver.validate(options.geo, 'geo')
    // Replicas named as a region's endpoints must be replicas of the pool.
    const ids = new Set(database?.replicas.map((replica) => replica.id) ?? [])
    for (const [region, endpoints] of Object.entries(options.geo.endpoints ?? {})) {
      endpoints?.replicas?.forEach((id, i) => {
        if (!ids.has(id)) {
          throw new InvalidOptionError(`geo.endpoints.${region}.replicas[${i}]`, `no replica "${id}" in database.replicas; their ids: ${[...ids].join(', ') || 'none'}`)
        }
      })
    }
  }
  for (const key of ['health', 'metrics'] as const) {
    const value = options[key]
    if (value !== undefined && value !== false && (typeof value !== 'object' || value === null || Array.isArray(value))) {
      throw new InvalidOptionError(key, `must be an object of options, or false to turn ${key} off`)
    }
  }
  const metrics = options.metrics
  if (metrics && metrics.prefix !== undefined && (typeof metrics.prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(metrics.prefix))) {
    throw new InvalidOptionError('metrics.prefix', 'must be a Prometheus name prefix such as routemq_')
  }
  if (options.health === false && metrics && Object.keys(metrics).length > 0) {
    throw new InvalidOptionError('metrics', 'has no effect with health: false (metrics are served on the health endpoint)')
  }
  if (options.health !== false) {
    // Built and dropped: the health module checks its own options (port, host, drain delay) when it is made.
    try {
      new HealthModule({ ...(options.health ?? {}), metrics: metrics === false ? false : { ...(metrics ?? {}), defaultMetrics: false } })
    } catch (error) {
      if (error instanceof InvalidOptionError) {
        const field = error.field.replace(/^health\.(port|host)$/, 'health.http.$1')
        throw new InvalidOptionError(field.startsWith('health') ? field : `health.${field}`, error.reason)
      }
      throw error
    }
  }
  if (options.logger !== undefined && (typeof options.logger !== 'object' || typeof options.logger?.warn !== 'function')) {
    throw new InvalidOptionError('logger', 'must be a Logger ({ debug, info, warn, error })')
  }
  return options
}
