import type { Application } from '../routemq/plugin-api.js'
import type { DependencyContainer } from '../routemq/plugin-api.js'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import type { Logger } from '../routemq/plugin-api.js'
import { checkOptions } from '../routemq/plugin-api.js'
import type { RouteMqModule } from '../routemq/plugin-api.js'
import { isMeasuredGeoGate, isMeasuredLookups, LoadBalancingMetrics, type LoadBalancingMetricsOptions } from '../metrics/load-balancing-metrics.js'
import type { MeasuredPool } from '../metrics/measured-pool.js'
import { HEALTH_MONITOR, METRICS } from '../tokens.js'
import type { Disposer } from '../typed-event.js'
import { GracefulShutdown, type GracefulShutdownOptions } from '../health/graceful-shutdown.js'
import type { HealthCheckDefinition, HealthCheckSource } from '../health/health-check.js'
import { HEALTH_MODULE_OPTIONS_SHAPE } from './health-module-options-shape.js'
import { HealthGate } from '../health/health-gate.js'
import type { HealthHttpOptions } from '../health/health-http-options.js'
import { HealthMonitor } from '../health/health-monitor.js'
import { HealthServer } from '../health/health-server.js'
import { spoolCheckName, spoolHealth } from '../health/spool/spool-health.js'
import { StatusPage, type StatusPageOptions } from '../health/status-page.js'

/** Options of `HealthModule`. */
export interface HealthModuleOptions {
  /** Default: a monitor of its own, logging to the application's logger. */
  readonly monitor?: HealthMonitor
  /**
   * Pools (a `ReplicaPool`, a `BrokerPool`) and a `GeoResolver`, whose checks are registered and whose metrics are collected.
   * The application's transport is added when it is such a pool.
   */
  readonly sources?: readonly HealthCheckSource[]
  /** Checks of your own. */
  readonly checks?: readonly HealthCheckDefinition[]
  /**
   * The HTTP endpoints and their limits (`HEALTH_HTTP_DEFAULTS`); `false` for none.
   * Default `{ host: '127.0.0.1', port: 9464 }`.
   */
  readonly http?: HealthHttpOptions | false
  /** Metrics on `/metrics`: options, an existing `LoadBalancingMetrics`, or `false`. Default `{}`. */
  readonly metrics?: LoadBalancingMetricsOptions | LoadBalancingMetrics | false
  /** Graceful shutdown on signals; `false` to leave signals to you. Default `{}`. */
  readonly shutdown?: GracefulShutdownOptions | false
  /**
   * The status page on `/status` (and its figures on `/status.json`), served with the other endpoints;
   * `false` for none. Default `{}` (refreshing every 2 s).
   */
  readonly statusPage?: StatusPageOptions | false
}

/**
 * Health monitoring for a RouteMQ application: registers `HEALTH_MONITOR`
 * and `METRICS` in its container; at start registers the checks of the
 * pools (the app's transport included, when it is a `BrokerPool`) and yours,
 * attaches every `healthGate` of the router to the monitor (an unknown
 * dependency name fails the start, naming the route), runs every
 * check once, serves `/health`, `/ready`, `/metrics` and the status page
 * (`/status`), and turns SIGTERM
 * into a graceful shutdown.
 *
 * @example
 * const app = Application.create({
 *   router, transport: brokers,
 *   modules: [new HealthModule({ sources: [brokers, replicas], http: { host: '0.0.0.0', port: 9464 } })],
 * })
 */
export class HealthModule implements RouteMqModule {
  readonly name = 'health'
  readonly monitor: HealthMonitor
  readonly metrics: LoadBalancingMetrics | undefined
  /** The status page's data, unless `statusPage: false` or `http: false`. */
  readonly statusPage: StatusPage | undefined
  readonly #options: HealthModuleOptions
  readonly #server: HealthServer | undefined
  readonly #shutdown: GracefulShutdown | undefined
  #app: Application | undefined
  #disposers: Disposer[] = []
  /** The gates attached at start, stopped (their spools closed) at stop. */
  readonly #gates = new Set<HealthGate>()
  /** The application's logger, once there is an application. */
  readonly #log: Logger = {
    debug: (message, fields) => this.#app?.logger.debug(message, fields),
    info: (message, fields) => this.#app?.logger.info(message, fields),
    warn: (message, fields) => this.#app?.logger.warn(message, fields),
    error: (message, fields) => this.#app?.logger.error(message, fields),
  }

  constructor(options: HealthModuleOptions = {}) {
    checkOptions(options, HEALTH_MODULE_OPTIONS_SHAPE, 'health')
    this.#options = Object.freeze({ ...options })
    this.monitor = options.monitor ?? new HealthMonitor({ logger: this.#log })
    const metrics = options.metrics ?? {}
    this.metrics = metrics === false ? undefined : metrics instanceof LoadBalancingMetrics ? metrics : new LoadBalancingMetrics(metrics)
    // Registered now, so that a wrong definition fails Application.create; they run from start() on.
    for (const check of options.checks ?? []) this.monitor.register(check)
    // Built now, so that a wrong option fails Application.create and nothing starts.
    const http = options.http ?? {}
    const transportConnected = (): boolean => this.#app?.state === 'started' && this.#app.transport?.connected === true
    const statusPage = options.statusPage ?? {}
    this.statusPage = http === false || statusPage === false ? undefined : new StatusPage(statusPage, { monitor: this.monitor, transportConnected })
    if (http !== false) {
      this.#server = new HealthServer({
        ...http,
        monitor: this.monitor,
        metrics: this.metrics,
        statusPage: this.statusPage,
        logger: this.#log,
        transportConnected,
      })
    }
    const shutdown = options.shutdown ?? {}
    if (shutdown !== false) {
      this.#shutdown = new GracefulShutdown(shutdown, {
        beginShutdown: () => this.#server?.beginShutdown(),
        stop: async () => {
          await this.#app?.stop()
        },
        logger: this.#log,
      })
    }
  }

  /** The HTTP server, once started (`undefined` with `http: false`). */
  get server(): HealthServer | undefined {
    return this.#server
  }

  /** Fails readiness, waits the drain delay, stops the app; as SIGTERM does. */
  shutdown(reason?: string): Promise<void> {
    if (!this.#shutdown || !this.#app) {
      return Promise.reject(new InvalidOptionError('health.shutdown', 'graceful shutdown is off, or the module has not started'))
    }
    return this.#shutdown.shutdown(reason)
  }

  register(container: DependencyContainer): void {
    container.register(HEALTH_MONITOR, { useValue: this.monitor })
    if (this.metrics) container.register(METRICS, { useValue: this.metrics })
  }

  async start(app: Application): Promise<void> {
    try {
      await this.#start(app)
    } catch (error) {
      // The application stops only the modules that started: undo what this one did.
      await this.stop()
      throw error
    }
  }

  async #start(app: Application): Promise<void> {
    this.#app = app
    const disposers = this.#disposers
    // The app's transport counts as a source when it describes itself (a BrokerPool), listed or not.
    const transport = app.transport as Partial<HealthCheckSource> | undefined
    const sources = [...(this.#options.sources ?? [])]
    if (typeof transport?.healthChecks === 'function' && !sources.includes(transport as HealthCheckSource)) sources.push(transport as HealthCheckSource)
    for (const source of sources) disposers.push(this.monitor.registerSource(source))
    const status = this.statusPage
    if (status) {
      disposers.push(status.observeApplication(app))
      for (const source of sources) disposers.push(status.observeSource(source))
    }
    const metrics = this.metrics
    if (metrics) {
      disposers.push(metrics.observeApplication(app), metrics.observeHealth(this.monitor))
      for (const source of sources) {
        if (isMeasuredPool(source)) disposers.push(metrics.observePool(source))
        if (isMeasuredLookups(source)) disposers.push(metrics.observeLookups(source))
      }
    }
    const geoGates = new Set<unknown>()
    const spoolLabels = new Set<string>()
    for (const route of app.router.routes) {
      for (const layer of route.middleware) {
        if (metrics && isMeasuredGeoGate(layer) && !geoGates.has(layer)) {
          geoGates.add(layer)
          disposers.push(metrics.observeGeoGate(layer))
        }
        if (!(layer instanceof HealthGate)) continue
        const monitor = layer.monitor ?? this.monitor
        const unknown = layer.dependencies.filter((name) => !monitor.has(name))
        if (unknown.length > 0) {
          throw new InvalidOptionError(
            `healthGate on route "${route.pattern}"`,
            `no health check named ${unknown.map((n) => `"${n}"`).join(', ')}; registered: ${monitor.names.join(', ') || 'none'}`,
          )
        }
        if (!this.#gates.has(layer)) {
          const field = `healthGate on route "${route.pattern}"`
          const base = layer.dependencies.join(',')
          let spoolLabel = base
          // Unique as a metric label and as a check name (`a,b` and `a/b` name the same check).
          for (let n = 2; spoolLabels.has(spoolLabel) || this.monitor.has(spoolCheckName(spoolLabel)); n++) spoolLabel = `${base}[${n}]`
          layer.attach(this.monitor, { replay: (message) => app.replay(message), logger: app.logger, field, spoolLabel })
          // Ended (and its spool closed) when the app has stopped, so nothing stays held in a stopped app.
          this.#gates.add(layer)
          if (layer.stats.spool) {
            spoolLabels.add(spoolLabel)
            disposers.push(this.monitor.registerSource(spoolHealth(layer)))
          }
          if (metrics) disposers.push(metrics.observeGate(layer))
          if (status) disposers.push(status.observeGate(layer))
        }
      }
    }
    await this.monitor.start()
    if (this.#server) {
      await this.#server.start()
      app.logger.info('health endpoints listening', { url: this.#server.url })
    }
    this.#shutdown?.install()
  }

  async stop(): Promise<void> {
    this.#shutdown?.uninstall()
    this.monitor.stop()
    for (const dispose of this.#disposers.splice(0)) dispose()
    const gates = [...this.#gates]
    this.#gates.clear()
    const stopped = await Promise.allSettled(gates.map((gate) => gate.stop()))
    await this.#server?.close()
    for (const outcome of stopped) if (outcome.status === 'rejected') throw outcome.reason
  }
}

function isMeasuredPool(source: object): source is MeasuredPool {
  const pool = source as Partial<MeasuredPool>
  return typeof pool.metricsSnapshot === 'function' && typeof pool.onRequest === 'function' && typeof pool.metricsLabel === 'string'
}
