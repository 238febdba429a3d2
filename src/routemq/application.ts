import { APPLICATION_OPTIONS_SHAPE } from './application-options-shape.js'
import { rootContainer, type DependencyContainer } from './container.js'
import { DefaultMqttTransport, type DefaultMqttTransportOptions } from './default-mqtt-transport.js'
import { ApplicationStateError } from './errors/application-state-error.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { ConsoleLogger, safeLogger, type Logger } from './logger.js'
import { raceTimeout } from './race-timeout.js'
import { MessageDispatcher, type DispatchStats, type DrainResult, type MessageOrdering } from './message-dispatcher.js'
import type { InboundMessage, MqttTransport, PublishOptions } from './mqtt-transport.js'
import { checkOptions } from './option-shape.js'
import type { ErrorPolicy } from './route.js'
import type { RouteMqModule } from './route-mq-module.js'
import type { Router } from './router.js'
import { APPLICATION, LOGGER, MESSAGE_CONTEXT, MQTT_TRANSPORT, ROUTER } from './tokens.js'
import { findUnresolvable } from './dependency-check.js'
import { tracePublish } from './tracing.js'

/** Options of `Application.create`. */
/** Gives user properties for a message the application publishes (see `Application.addPublishProperties`). */
export type PublishPropertiesProvider = () => Readonly<Record<string, string>> | undefined | Promise<Readonly<Record<string, string>> | undefined>

export interface ApplicationOptions {
  readonly router: Router
  /** Started in order, stopped in reverse. */
  readonly modules?: readonly RouteMqModule[]
  /**
   * The application registers into a child of this container, so two
   * applications never see each other's registrations. Default: tsyringe's root.
   */
  readonly container?: DependencyContainer
  /** Broker for the default single-broker transport, used when no module and no `transport` provide one. */
  readonly mqtt?: DefaultMqttTransportOptions
  /**
   * An explicit transport; a module registering `MQTT_TRANSPORT` wins over it.
   * A `start()` that fails once connecting closes it, so a retry then needs the
   * default transport (`mqtt`) or a module; one that fails before (a module's
   * start) leaves it untouched.
   */
  readonly transport?: MqttTransport
  /** Default `new ConsoleLogger()`. */
  readonly logger?: Logger
  /** What happens to a message whose handler failed. Default `'ack'`; see `ErrorPolicy`. */
  readonly onError?: ErrorPolicy
  /** Handlers running at once; further messages wait in arrival order. Default 256. */
  readonly maxInFlight?: number
  /**
   * Messages accepted and not yet settled above which QoS 0 messages are
   * dropped and counted (QoS 1 and 2 are bounded by the broker's in-flight
   * window and never dropped). Default 10 000.
   */
  readonly maxQueued?: number
  /** Default `'topic'`: per topic one at a time, in order; topics run concurrently. */
  readonly ordering?: MessageOrdering
  /** How long `stop()` waits for running handlers (and the unsubscribe before them). Default 10 000 ms. */
  readonly drainTimeoutMs?: number
}

/** What `stop()` observed. */
export type StopResult = DrainResult

type State = 'created' | 'starting' | 'started' | 'stopping' | 'stopped'

/**
 * A RouteMQ application: a router, its modules and a transport, with a
 * lifecycle. `start()` registers nothing new; `create()` already ran every
 * module's `register`, so providers can be resolved before starting.
 *
 * @example
 * const app = Application.create({ router, mqtt: { url: 'mqtt://127.0.0.1:1883' } })
 * await app.start()
 * process.once('SIGTERM', () => void app.stop())
 */
export class Application {
  readonly container: DependencyContainer
  readonly router: Router
  readonly logger: Logger
  readonly #options: ApplicationOptions
  readonly #modules: readonly RouteMqModule[]
  readonly #dispatcher: MessageDispatcher
  #transport: MqttTransport | undefined
  readonly #publishProviders: PublishPropertiesProvider[] = []
  /** The transport this application made or was given, told apart from one a module registered. */
  #ownTransport: MqttTransport | undefined
  /** Whether this start got as far as connecting: only then has the transport anything to close. */
  #connecting = false
  /** Modules prepared or started, to be stopped (in reverse module order). */
  #started = new Set<RouteMqModule>()
  #state: State = 'created'
  #starting: Promise<void> | undefined
  #stopping: Promise<StopResult> | undefined

  private constructor(options: ApplicationOptions) {
    validate(options)
    this.#options = Object.freeze({ ...options })
    this.router = options.router
    this.logger = safeLogger(options.logger ?? new ConsoleLogger())
    this.container = (options.container ?? rootContainer).createChildContainer()
    this.#modules = Object.freeze([...(options.modules ?? [])])
    this.container.register(APPLICATION, { useValue: this })
    this.container.register(ROUTER, { useValue: this.router })
    this.container.register(LOGGER, { useValue: this.logger })
    for (const module of this.#modules) module.register(this.container)
    this.#dispatcher = new MessageDispatcher({
      router: this.router,
      container: this.container,
      publish: this.publish,
      logger: this.logger,
      onError: options.onError ?? 'ack',
      maxInFlight: options.maxInFlight ?? 256,
      maxQueued: options.maxQueued ?? 10_000,
      ordering: options.ordering ?? 'topic',
      keepsSession: () => this.#transport?.persistentSession === true,
    })
  }

  /** Validates the options and runs every module's `register`. */
  static create(options: ApplicationOptions): Application {
    return new Application(options)
  }

  /** The transport in use; available once `start()` has begun (modules see it in their `start`, not yet connected). */
  get transport(): MqttTransport | undefined {
    return this.#transport
  }

  /** Counters of received, handled, failed, unmatched, ... messages. */
  get stats(): DispatchStats {
    return this.#dispatcher.stats
  }

  get state(): State {
    return this.#state
  }

  /**
   * Starts modules in order, connects the transport and subscribes every
   * route. Concurrent calls share one start; after a failure, everything
   * started is stopped again and `start()` may be retried.
   */
  start(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') {
      return Promise.reject(new ApplicationStateError('This application was stopped; create a new Application to start again.'))
    }
    this.#starting ??= this.#start().catch(async (error: unknown) => {
      // Messages may have arrived between connect and the failure: let them
      // finish before the modules they use are stopped.
      this.#dispatcher.refuse()
      await this.#dispatcher.drain(this.#options.drainTimeoutMs ?? 10_000)
      // What is still running or held belongs to the failed attempt: never acknowledged.
      this.#dispatcher.abandon()
      await this.#shutdown().catch((cleanup: unknown) => this.logger.error('cleanup after failed start failed', { error: cleanup }))
      this.#dispatcher.accept()
      this.#starting = undefined
      this.#state = 'created'
      throw error
    })
    return this.#starting
  }

  /**
   * Stops gracefully: stops taking messages, lets running handlers finish
   * (up to `drainTimeoutMs`), closes the transport, then stops modules in
   * reverse. With a persistent session, messages that arrive meanwhile stay
   * unacknowledged for the next start; with a clean session the routes are
   * unsubscribed first so that nothing arrives that could not be handled.
   */
  stop(): Promise<StopResult> {
    this.#stopping ??= this.#stop()
    return this.#stopping
  }

  /**
   * Hands `message` to the application as if its transport had delivered it:
   * route, middleware, handler, error policy, and `message.settle` at the
   * end. A durable store replaying what it kept (a health gate's spool) uses
   * it; such a store keeps each topic's order itself (one message of a topic
   * at a time), since the dispatcher does not order replays among the
   * messages it takes from the transport. Returns false, taking nothing,
   * unless the application is started.
   *
   * @example
   * if (!app.replay({ ...kept, settle: (ack) => ack && store.remove(kept) })) retryLater()
   */
  replay(message: InboundMessage): boolean {
    if (this.#state !== 'started') return false
    this.#dispatcher.replay(message)
    return true
  }

  /**
   * Publishes through the application's transport; objects are sent as JSON.
   *
   * @example
   * await app.publish('devices/7/config', { interval: 30 }, { qos: 1 })
   */
  readonly publish = async (topic: string, payload: unknown, options?: PublishOptions): Promise<void> => {
    const transport = this.#transport
    if (!transport) throw new ApplicationStateError('The application has no transport yet; publish after start().')
    const body = encode(payload)
    await tracePublish(topic, options, body, async (traceContext) => {
      const added = this.#publishProviders.length === 0 ? traceContext : await this.#providedProperties(traceContext)
      await transport.publish(topic, body, added ? withUserProperties(options, added) : options)
    })
  }

  /**
   * Adds MQTT 5 user properties to every message the application publishes
   * (`app.publish`, `ctx.publish`, dead letters). `provider` runs in the
   * publisher's async context, so it sees the message being handled; what it
   * returns (or resolves to) is added unless the publisher set a property of
   * that name itself. It wins over the trace context (`traceparent`,
   * `tracestate`) added when an OpenTelemetry SDK is registered.
   * Returns a function that removes the provider. (MQTT 3.1.1 carries no
   * properties: there, nothing is added.)
   *
   * @example
   * app.addPublishProperties(() => ({ 'trace-id': currentTraceId() }))
   */
  addPublishProperties(provider: PublishPropertiesProvider): () => void {
    this.#publishProviders.push(provider)
    return () => {
      const at = this.#publishProviders.indexOf(provider)
      if (at >= 0) this.#publishProviders.splice(at, 1)
    }
  }

  /** What the providers add, over `base` (the message's trace context): a provider's property wins over the trace context's. */
  async #providedProperties(base: Readonly<Record<string, string>> | undefined): Promise<Readonly<Record<string, string>> | undefined> {
    let provided = base
    for (const provider of this.#publishProviders) {
      const properties = await provider()
      if (properties) provided = { ...provided, ...properties }
    }
    return provided
  }

  async #start(): Promise<void> {
    this.#state = 'starting'
    for (const module of this.#modules) {
      if (!module.prepare) continue
      // Stopped on failure from here on: a prepared module may hold what it built.
      this.#started.add(module)
      await module.prepare(this)
    }
    // Resolved before the modules start, so they can see it (a health module registers its checks), though it is not connected yet.
    const transport = this.#resolveTransport()
    this.#transport = transport
    for (const module of this.#modules) {
      await module.start?.(this)
      this.#started.add(module)
    }
    this.#checkControllers()
    if (!transport.persistentSession && this.#usesRedeliver()) {
      this.logger.warn(
        "onError 'redeliver' with a clean session: failed messages are never redelivered, and each holds one of the broker's in-flight slots until the connection drops; use clean: false with a stable clientId",
      )
    }
    this.#connecting = true
    await transport.connect(this.#dispatcher.receive)
    await transport.subscribe(this.router.subscriptions())
    this.#state = 'started'
    this.logger.info('application started', { routes: this.router.routes.length })
  }

  async #stop(): Promise<StopResult> {
    if (this.#starting) await this.#starting.catch(() => undefined)
    this.#state = 'stopping'
    const transport = this.#transport
    const deadline = Date.now() + (this.#options.drainTimeoutMs ?? 10_000)
    // Before refusing messages: what the broker hands over meanwhile is still handled.
    const handBack = transport?.connected && transport.handBack
      ? transport.handBack()
      : transport?.connected && !transport.persistentSession
        ? transport.unsubscribe(this.router.subscriptions().map((s) => s.topic))
        : undefined
    if (handBack) {
      const outcome = await raceTimeout(handBack.then(() => true), deadline - Date.now(), () => false).catch((error: unknown) => {
        this.logger.warn('handing the subscriptions back on stop failed', { error })
        return true
      })
      if (!outcome) this.logger.warn('handing the subscriptions back on stop did not finish before the drain timeout')
    }
    this.#dispatcher.refuse()
    const result: StopResult = await this.#dispatcher.drain(deadline - Date.now())
    if (!result.drained) {
      this.#dispatcher.abandon()
      this.logger.warn('stop: handlers still running after the drain timeout; their messages stay unacknowledged', {
        abandoned: result.abandoned,
      })
    }
    this.#dispatcher.flushLogs()
    await this.#shutdown()
    this.#state = 'stopped'
    this.logger.info('application stopped', { ...this.#dispatcher.stats })
    return result
  }

  async #shutdown(): Promise<void> {
    const errors: unknown[] = []
    try {
      // A start that failed before connecting leaves the transport as it found it, so start() can be retried with it.
      if (this.#connecting) await this.#transport?.close()
    } catch (error) {
      errors.push(error)
    }
    this.#connecting = false
    for (const module of [...this.#modules].reverse()) {
      if (!this.#started.has(module)) continue
      try {
        await module.stop?.(this)
      } catch (error) {
        this.logger.error('module failed to stop', { module: module.name ?? 'unnamed', error })
        errors.push(error)
      }
    }
    this.#started.clear()
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, 'several parts failed to stop')
  }

  /** Every controller a route resolves per message can be built (checked without building it): else no message would be handled. */
  #checkControllers(): void {
    for (const route of this.router.routes) {
      if (route.controller === undefined) continue
      const problem = findUnresolvable(route.controller, this.container, [MESSAGE_CONTEXT], `route "${route.pattern}"`)
      if (problem) throw problem
    }
  }

  #usesRedeliver(): boolean {
    return this.#options.onError === 'redeliver' || this.router.routes.some((route) => route.onError === 'redeliver')
  }

  #resolveTransport(): MqttTransport {
    // A module's registration (in register or prepare) wins over the options.
    if (this.container.isRegistered(MQTT_TRANSPORT, true)) {
      const registered = this.container.resolve<MqttTransport>(MQTT_TRANSPORT)
      if (registered !== this.#ownTransport) return registered
    }
    // A failed start closes the transport, so each attempt builds its own default one.
    const transport = this.#options.transport ?? new DefaultMqttTransport({ logger: this.logger, ...this.#options.mqtt! })
    this.#ownTransport = transport
    this.container.register(MQTT_TRANSPORT, { useValue: transport })
    return transport
  }
}

/** `added` under the publisher's own user properties: a property the publisher set wins. */
function withUserProperties(options: PublishOptions | undefined, added: Readonly<Record<string, string>>): PublishOptions {
  const own = options?.properties
  return { ...options, properties: { ...own, userProperties: { ...added, ...own?.userProperties } } }
}

function encode(payload: unknown): string | Uint8Array {
  if (typeof payload === 'string' || payload instanceof Uint8Array) return payload
  return JSON.stringify(payload) ?? ''
}

function validate(options: ApplicationOptions): void {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'pass { router, mqtt | transport | modules }')
  checkOptions(options, APPLICATION_OPTIONS_SHAPE, '')
  if (!options.transport && !options.mqtt && !(options.modules ?? []).length) {
    throw new InvalidOptionError('mqtt', 'no transport: pass mqtt: { url }, a transport, or a module that provides one')
  }
  if (options.mqtt && !options.transport) new DefaultMqttTransport(options.mqtt, 'mqtt')
}
