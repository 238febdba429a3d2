import { Kysely } from 'kysely'
import { GeoResolver } from '../../plugins/geoip/geo-resolver.js'
import { ReplicaPool } from '../../plugins/kysely/replica-pool.js'
import { ReplicatedPostgresDialect } from '../../plugins/kysely/replicated-postgres-dialect.js'
import { migrateOnStart } from '../../plugins/kysely/migrate-on-start.js'
import { resolveReplicaPoolOptions } from '../../plugins/kysely/replica-pool-options.js'
import { WRITE_POSITION_PROPERTY } from '../../plugins/kysely/write-position.js'
import { USES_MODULE_RESOLVER } from '../../plugins/geoip/geo-region.js'
import { BrokerPool } from '../../plugins/mqtt/broker-pool.js'
import type { HealthCheckSource } from '../health/health-check.js'
import { HealthModule } from './health-module.js'
import type { Application } from '../routemq/application.js'
import type { DependencyContainer, InjectionToken } from '../routemq/container.js'
import { InvalidOptionError } from '../routemq/errors/invalid-option-error.js'
import { UnresolvableDependencyError } from '../routemq/errors/unresolvable-dependency-error.js'
import { checkOptions, isFunction, listOf, required, type OptionShape } from '../routemq/option-shape.js'
import type { RouteMqModule } from '../routemq/route-mq-module.js'
import { MQTT_TRANSPORT } from '../routemq/tokens.js'
import { BROKER_POOL, GEO_RESOLVER, KYSELY, LOAD_BALANCING_OPTIONS, REPLICA_POOL } from '../tokens.js'
import { asVariableError, loadBalancingOptionsFromEnv } from './env-options.js'
import { findUnbuildableRepository } from './repository.js'
import { validateLoadBalancingOptions, type LoadBalancingOptions } from './load-balancing-options.js'

/** Options of `LoadBalancingModule.forRootAsync`. */
export interface LoadBalancingAsyncOptions {
  /** Builds the options at start (read a secret store, a config service, ...); gets the `inject` tokens, resolved. */
  readonly useFactory: (...dependencies: never[]) => LoadBalancingOptions | Promise<LoadBalancingOptions>
  /** Tokens resolved from the application's container and passed to `useFactory`, in order. */
  readonly inject?: readonly InjectionToken<unknown>[]
}

const ASYNC_OPTIONS_SHAPE: OptionShape<LoadBalancingAsyncOptions> = {
  useFactory: required(isFunction('a function that returns the options'), 'give a function that returns the options'),
  inject: listOf((value, field) => {
    if (value === null || (typeof value !== 'string' && typeof value !== 'symbol' && typeof value !== 'function' && typeof value !== 'object')) {
      throw new InvalidOptionError(field, 'must be an injection token: a class, a string or a symbol')
    }
  }),
}

/** What the module built for one start. */
interface Built {
  options: LoadBalancingOptions
  geo?: GeoResolver
  replicas?: ReplicaPool
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the app's own schema, unknown here: it resolves the instance as Kysely<ItsDatabase>
  kysely?: Kysely<any>
  brokers?: BrokerPool
  health?: HealthModule
  /** Stops adding the write position to what the app publishes. */
  unpublish?: () => void
}

const TOKENS = [BROKER_POOL, REPLICA_POOL, KYSELY, GEO_RESOLVER, LOAD_BALANCING_OPTIONS] as const

/**
 * The plugin in one module: from one options tree it builds the parts that
 * are configured, a `BrokerPool` (the application's transport), a
 * `ReplicaPool` with a Kysely instance over it, a `GeoResolver`, and health
 * monitoring with metrics; registers them in the application's container
 * (`BROKER_POOL`, `MQTT_TRANSPORT`, `REPLICA_POOL`, `KYSELY`,
 * `GEO_RESOLVER`, `HEALTH_MONITOR`, `METRICS`, `LOAD_BALANCING_OPTIONS`);
 * and starts and stops them in dependency order: the GeoIP database and the
 * database pool first, then health, then the transport connects; on stop
 * the transport closes first, the database last.
 *
 * @example
 * const app = Application.create({
 *   router,
 *   modules: [LoadBalancingModule.forRoot({
 *     mqtt: { brokers: ['mqtt://broker-1:1883', 'mqtt://broker-2:1883'] },
 *     database: { primary: process.env.DATABASE_URL!, replicas: [process.env.REPLICA_URL!] },
 *   })],
 * })
 */
export class LoadBalancingModule implements RouteMqModule {
  readonly name = 'load-balancing'
  readonly #options: LoadBalancingOptions | undefined
  readonly #async: LoadBalancingAsyncOptions | undefined
  /** The environment `fromEnv` read, so that errors of the start name the variable that set the option. */
  readonly #env: Readonly<Record<string, string | undefined>> | undefined
  #built: Built | undefined
  /** The application this module serves; one module per application. */
  #app: Application | undefined
  /** The tokens this module answers for in the application's container. */
  readonly #owned = new Set<(typeof TOKENS)[number]>()

  private constructor(options: LoadBalancingOptions | undefined, async: LoadBalancingAsyncOptions | undefined, env?: Readonly<Record<string, string | undefined>>) {
    this.#options = options
    this.#async = async
    this.#env = env === undefined ? undefined : Object.freeze({ ...env })
  }

  /** Options given in code, validated now: a wrong one fails here, naming the field, and nothing starts. */
  static forRoot(options: LoadBalancingOptions): LoadBalancingModule {
    return new LoadBalancingModule(validateLoadBalancingOptions(options), undefined)
  }

  /** Options built at start by `useFactory`, with `inject` tokens from the container; validated then. */
  static forRootAsync(options: LoadBalancingAsyncOptions): LoadBalancingModule {
    checkOptions(options, ASYNC_OPTIONS_SHAPE, 'forRootAsync')
    return new LoadBalancingModule(undefined, options)
  }

  /**
   * Options from environment variables (`ROUTEMQ_MQTT_BROKERS`,
   * `ROUTEMQ_DATABASE_URL`, ...; see the README's table), read and validated
   * now: an unknown `ROUTEMQ_` variable or a malformed value fails, naming
   * the variable. `overrides` are merged over what the environment gives
   * (a logger, TLS material, things no variable expresses).
   */
  static fromEnv(env: Readonly<Record<string, string | undefined>> = process.env, overrides: Partial<LoadBalancingOptions> = {}): LoadBalancingModule {
    return new LoadBalancingModule(loadBalancingOptionsFromEnv(env, overrides), undefined, env)
  }

  /** What the module built, once started. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the app's own schema, unknown here: it resolves the instance as Kysely<ItsDatabase>
  get parts(): Readonly<{ brokers?: BrokerPool; replicas?: ReplicaPool; kysely?: Kysely<any>; geo?: GeoResolver; health?: HealthModule }> {
    const built = this.#built
    return Object.freeze({ brokers: built?.brokers, replicas: built?.replicas, kysely: built?.kysely, geo: built?.geo, health: built?.health })
  }

  register(container: DependencyContainer): void {
    // Until start builds them, resolving a part says why there is none yet. What another module registered stays.
    for (const token of TOKENS) {
      if (container.isRegistered(token, true)) continue
      this.#owned.add(token)
      this.#unavailable(container, token, 'is built when the application starts; resolve it in handlers, or after app.start()')
    }
  }

  async prepare(app: Application): Promise<void> {
    await this.#named(() => this.#prepare(app))
  }

  async start(app: Application): Promise<void> {
    await this.#named(() => this.#start(app))
  }

  /** Runs a step of the start; an option's error names the field as the options tree has it, or the variable that set it. */
  async #named(step: () => Promise<void>): Promise<void> {
    try {
      await step()
    } catch (error) {
      // The health server knows its own options only (`port`, `host`); here they sit under health.http.
      const named = error instanceof InvalidOptionError && /^health\.(port|host)$/.test(error.field)
        ? new InvalidOptionError(error.field.replace(/^health\./, 'health.http.'), error.reason)
        : error
      throw this.#env === undefined ? named : asVariableError(named, this.#env)
    }
  }

  async #prepare(app: Application): Promise<void> {
    if (this.#app !== undefined && this.#app !== app) {
      throw new InvalidOptionError('modules', 'this LoadBalancingModule already serves another application; create one per application')
    }
    this.#app = app
    const options = this.#options ?? validateLoadBalancingOptions(await this.#runFactory(app))
    const built: Built = (this.#built = { options })
    // Parts that are off say so, rather than "not started yet".
    const off: [(typeof TOKENS)[number], boolean, string, string][] = [
      [GEO_RESOLVER, !options.geo, 'geo', 'ROUTEMQ_GEOIP_DATABASE'], [REPLICA_POOL, !options.database, 'database', 'ROUTEMQ_DATABASE_URL'],
      [KYSELY, !options.database, 'database', 'ROUTEMQ_DATABASE_URL'], [BROKER_POOL, !options.mqtt, 'mqtt', 'ROUTEMQ_MQTT_BROKERS'],
    ]
    for (const [token, isOff, part, variable] of off) {
      if (!isOff || !this.#owned.has(token)) continue
      // The code asks for a part the configuration left out: every message needing it would fail alike, so it is a named wiring error.
      const fix = this.#env === undefined ? `Add ${part} to LoadBalancingModule's options` : `Set ${variable}`
      app.container.register(token, {
        useFactory: () => {
          throw new UnresolvableDependencyError(String(token.description), `it is not configured (no ${part} in LoadBalancingModule's options)`, `${fix}, or do not resolve it (a repository taking @InjectKysely() needs database).`)
        },
      })
    }
    const logger = options.logger ?? app.logger
    const container = app.container
    container.register(LOAD_BALANCING_OPTIONS, { useValue: options })
    if (options.geo) {
      built.geo = await GeoResolver.open({ logger, ...options.geo })
      container.register(GEO_RESOLVER, { useValue: built.geo })
    }
    if (options.database) {
      const { migrate, ...pool } = options.database
      built.replicas = await ReplicaPool.create({ logger, ...pool })
      if (migrate) {
        const setting = this.#env?.ROUTEMQ_DATABASE_MIGRATE !== undefined ? 'ROUTEMQ_DATABASE_MIGRATE' : 'database.migrate'
        for (const line of await migrateOnStart(built.replicas, resolveReplicaPoolOptions(pool), setting, logger)) logger.info('migration', { result: line })
      }
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the app's own schema, unknown here: it resolves the instance as Kysely<ItsDatabase>
      built.kysely = new Kysely<any>({ dialect: new ReplicatedPostgresDialect(built.replicas) })
      // What the app publishes after a write carries the write's position, so whichever instance handles the answer reads it.
      const replicas = built.replicas
      built.unpublish = app.addPublishProperties(async () => {
        const position = await replicas.writePosition()
        return position === undefined ? undefined : { [WRITE_POSITION_PROPERTY]: position }
      })
      container.register(REPLICA_POOL, { useValue: built.replicas })
      container.register(KYSELY, { useValue: built.kysely })
    }
    if (options.mqtt) {
      // Instances of one app share a group: the router's shared group, when it is a name every broker takes in a topic.
      const group = /^[A-Za-z0-9_-]{1,64}$/.test(app.router.sharedGroup) ? { group: app.router.sharedGroup } : {}
      built.brokers = new BrokerPool({ logger, ...group, ...options.mqtt })
      container.register(BROKER_POOL, { useValue: built.brokers })
      container.register(MQTT_TRANSPORT, { useValue: built.brokers })
    }
    if (options.health !== false) {
      const sources = [built.replicas, built.geo].filter((source): source is ReplicaPool & GeoResolver => source !== undefined) as HealthCheckSource[]
      built.health = new HealthModule({ ...(options.health ?? {}), sources, metrics: options.metrics ?? {} })
      built.health.register(container)
    }
  }

  async #start(app: Application): Promise<void> {
    // A forgotten @Repository() would otherwise fail every message that needs the class.
    const unbuildable = findUnbuildableRepository()
    if (unbuildable) throw unbuildable
    if (!this.#built?.geo) {
      for (const route of app.router.routes) {
        if (route.middleware.some((layer) => (layer as { [USES_MODULE_RESOLVER]?: boolean })[USES_MODULE_RESOLVER] === true)) {
          throw new InvalidOptionError(`geoRegion on route "${route.pattern}"`, 'has no resolver: configure geo in LoadBalancingModule, or pass geoRegion({ ip, resolver })')
        }
      }
    }
    await this.#built?.health?.start(app)
  }

  async stop(): Promise<void> {
    const built = this.#built
    this.#built = undefined
    if (!built) return
    for (const token of this.#owned) this.#unavailable(this.#app!.container, token, 'belongs to an application that has stopped')
    const errors: unknown[] = []
    const attempt = async (step: () => unknown): Promise<void> => {
      try {
        await step()
      } catch (error) {
        errors.push(error)
      }
    }
    // The transport (the broker pool) was closed by the application before this.
    built.unpublish?.()
    await attempt(() => built.health?.stop())
    // Kysely closes the pool only if it ever used it; closing twice is one close. Queries in flight finish first.
    await attempt(() => built.kysely?.destroy())
    await attempt(() => built.replicas?.close())
    await attempt(() => built.geo?.close())
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, 'several load-balancing parts failed to stop')
  }

  #unavailable(container: DependencyContainer, token: (typeof TOKENS)[number], reason: string): void {
    container.register(token, {
      useFactory: () => {
        throw new InvalidOptionError(String(token.description), reason)
      },
    })
  }

  async #runFactory(app: Application): Promise<LoadBalancingOptions> {
    const { useFactory, inject = [] } = this.#async!
    const dependencies = inject.map((token) => app.container.resolve(token))
    return useFactory(...(dependencies as never[]))
  }
}
