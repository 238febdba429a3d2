import { resolveBrokerPoolOptions, type BrokerPoolOptions } from '../../plugins/mqtt/broker-pool-options.js'
import { BROKER_POOL_OPTIONS_SHAPE } from '../../plugins/mqtt/broker-pool-options-shape.js'
import { resolveReplicaPoolOptions, type ReplicaPoolOptions, type ResolvedReplicaPoolOptions } from '../../plugins/kysely/replica-pool-options.js'
import { REPLICA_POOL_OPTIONS_SHAPE } from '../../plugins/kysely/replica-pool-options-shape.js'
import { GeoResolver, type GeoResolverOptions } from '../../plugins/geoip/geo-resolver.js'
import { GEO_RESOLVER_OPTIONS_SHAPE } from '../../plugins/geoip/geo-resolver-options-shape.js'
import { HealthModule, type HealthModuleOptions } from './health-module.js'
import { HEALTH_OPTIONS_SHAPE } from './health-module-options-shape.js'
import type { LoadBalancingMetricsOptions } from '../metrics/load-balancing-metrics.js'
import { LOAD_BALANCING_METRICS_OPTIONS_SHAPE } from '../metrics/load-balancing-metrics-options-shape.js'
import { InvalidOptionError, withFieldPrefix } from '../routemq/errors/invalid-option-error.js'
import type { Logger } from '../routemq/logger.js'
import { byKind, checkOptions, isBoolean, isLogger, shapeOf, type OptionShape } from '../routemq/option-shape.js'

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

/** The database part: the replica pool's, and `migrate`. */
const DATABASE_OPTIONS_SHAPE: OptionShape<DatabaseOptions> = { ...REPLICA_POOL_OPTIONS_SHAPE, migrate: isBoolean }

const LOAD_BALANCING_OPTIONS_SHAPE: OptionShape<LoadBalancingOptions> = {
  mqtt: shapeOf(BROKER_POOL_OPTIONS_SHAPE),
  database: shapeOf(DATABASE_OPTIONS_SHAPE),
  geo: shapeOf(GEO_RESOLVER_OPTIONS_SHAPE),
  health: byKind('must be an object of options, or false to turn health off', { false: true, object: shapeOf(HEALTH_OPTIONS_SHAPE) }),
  metrics: byKind('must be an object of options, or false to turn metrics off', { false: true, object: shapeOf(LOAD_BALANCING_METRICS_OPTIONS_SHAPE) }),
  logger: isLogger,
}

/**
 * Checks the whole options tree without connecting anywhere or opening a
 * file; every error is an `InvalidOptionError` naming the field
 * (`database.replicas[1].url`, `geo.rules[0].countries[2]`). A key no
 * option has, at any depth, is refused with the closest one
 * (`mqtt.offlineBufer`: did you mean `mqtt.offlineBuffer`?).
 *
 * @example
 * validateLoadBalancingOptions({ mqtt: { brokers: ['mqtt://b1:1883'] }, database: { primary: 'postgres://app@db:5432/app' } })
 */
export function validateLoadBalancingOptions(options: LoadBalancingOptions): LoadBalancingOptions {
  if (!options || typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidOptionError('loadBalancing', 'pass { mqtt?, database?, geo?, health?, metrics? }')
  }
  // Every key and type first, with full paths; the parts then check what depends on several options.
  checkOptions(options, LOAD_BALANCING_OPTIONS_SHAPE, '')
  if (options.mqtt === undefined && options.database === undefined && options.geo === undefined) {
    throw new InvalidOptionError('loadBalancing', 'configure at least one of mqtt, database and geo')
  }
  if (options.mqtt !== undefined) withFieldPrefix('mqtt', () => resolveBrokerPoolOptions(options.mqtt!, 'validation'))
  let database: ResolvedReplicaPoolOptions | undefined
  if (options.database !== undefined) {
    const { migrate: _migrate, ...pool } = options.database
    database = withFieldPrefix('database', () => resolveReplicaPoolOptions(pool))
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
  const metrics = options.metrics
  if (options.health === false && metrics && Object.keys(metrics).length > 0) {
    throw new InvalidOptionError('metrics', 'has no effect with health: false (metrics are served on the health endpoint)')
  }
  if (options.health !== false) {
    // Built and dropped: what only building shows (two checks of one name, the server's own limits) fails here too.
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
  return options
}
