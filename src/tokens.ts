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
