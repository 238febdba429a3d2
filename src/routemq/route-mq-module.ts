import type { DependencyContainer } from './container.js'
import type { Application } from './application.js'

/**
 * A unit of the bootstrap: registers providers, then takes part in the
 * lifecycle. Modules start in the order given and stop in reverse, so a
 * module may rely on everything before it.
 *
 * @example
 * const audit: RouteMqModule = {
 *   register(container) { container.registerSingleton(AuditLog) },
 *   async start(app) { await app.container.resolve(AuditLog).open() },
 *   async stop(app) { await app.container.resolve(AuditLog).close() },
 * }
 */
export interface RouteMqModule {
  /** A name for logs and errors. */
  readonly name?: string
  /** Called once, from `Application.create`. A module registering `MQTT_TRANSPORT` replaces the default transport. */
  register(container: DependencyContainer): void
  /**
   * Called by `start()` before anything else, for a module that builds its
   * providers asynchronously (opening pools, running a factory): what it
   * registers here, `MQTT_TRANSPORT` included, is what the application then
   * uses. A module whose `prepare` ran gets `stop` even if its `start` never
   * did, so `stop` must undo a `prepare` alone.
   */
  prepare?(app: Application): Promise<void> | void
  /** Called by `start()`, before the transport connects. */
  start?(app: Application): Promise<void> | void
  /** Called by `stop()`, after the transport closed. */
  stop?(app: Application): Promise<void> | void
}
