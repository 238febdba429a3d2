/**
 * Dependency-injection tokens of the load-balancing core, beside the
 * kernel's (`MQTT_TRANSPORT`, `APPLICATION`, ...). Resolve them from the
 * application's container.
 *
 * @example
 * const monitor = app.container.resolve<HealthMonitor>(HEALTH_MONITOR)
 */
export const HEALTH_MONITOR = Symbol.for('routemq-load-balancing.HealthMonitor')
/** The `LoadBalancingMetrics` behind `/metrics`. */
export const METRICS = Symbol.for('routemq-load-balancing.Metrics')
/** The `BrokerPool` a `LoadBalancingModule` built (also the application's `MQTT_TRANSPORT`). */
export const BROKER_POOL = Symbol.for('routemq-load-balancing.BrokerPool')
/** The `ReplicaPool` a `LoadBalancingModule` built. */
export const REPLICA_POOL = Symbol.for('routemq-load-balancing.ReplicaPool')
/** The `Kysely` instance over the replica pool, for repositories (see `InjectKysely`). */
export const KYSELY = Symbol.for('routemq-load-balancing.Kysely')
/** The `GeoResolver` a `LoadBalancingModule` opened. */
export const GEO_RESOLVER = Symbol.for('routemq-load-balancing.GeoResolver')
/** The validated `LoadBalancingOptions` the module runs with. */
export const LOAD_BALANCING_OPTIONS = Symbol.for('routemq-load-balancing.Options')
