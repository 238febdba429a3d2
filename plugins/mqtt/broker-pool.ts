import { hostname } from 'node:os'
import { Backend } from '../../src/balancing/backend.js'
import { BackendSet, type BackendStateChange } from '../../src/balancing/backend-set.js'
import { createStrategy } from '../../src/balancing/create-strategy.js'
import { DecorrelatedJitterBackoff } from '../../src/balancing/decorrelated-jitter-backoff.js'
import { Ewma } from '../../src/balancing/ewma.js'
import { ApplicationStateError } from '../../src/routemq/errors/application-state-error.js'
import { ConnectionFailedError } from '../../src/routemq/errors/connection-failed-error.js'
import { InvalidTopicError } from '../../src/routemq/errors/invalid-topic-error.js'
import { isSubscriptionRejectedError } from '../../src/routemq/errors/subscription-rejected-error.js'
import { publishTopicProblem } from '../../src/routemq/publish-topic.js'
import { raceTimeout } from '../../src/routemq/race-timeout.js'
import { TransportClosedError } from '../../src/routemq/errors/transport-closed-error.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/logger.js'
import type { MessageReceiver, MqttTransport, PublishOptions, Subscription } from '../../src/routemq/mqtt-transport.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { HealthCheckDefinition, HealthCheckSource } from '../../src/health/health-check.js'
import type { MeasuredPool, PoolMetricsSnapshot, RequestObserved } from '../../src/metrics/measured-pool.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { BrokerConnection } from './broker-connection.js'
import { resolveBrokerPoolOptions, type BrokerPoolOptions, type ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { probeBroker } from './broker-probe.js'
import { PublishAbandonedError } from './errors/publish-abandoned-error.js'
import { PublishDroppedError } from './errors/publish-dropped-error.js'
import { Qos2InterruptedError } from './errors/qos2-interrupted-error.js'
import { outgoing, PublishQueue, type OutgoingPublish } from './publish-queue.js'
import { findReferencedBroker } from './server-reference.js'

/** The pool moved to another broker (failover mode). */
export interface FailoverEvent {
  /** The broker whose connection was lost, if any. */
  readonly from: string | undefined
  readonly to: string
  /** From noticing the loss to the new connection taking publishes, in ms. */
  readonly gapMs: number
  /** Publishes waiting to be sent again on the new connection. */
  readonly replaying: number
}

/** The active connection moved to another broker (failover mode), for whatever reason. */
export interface ActiveBrokerEvent {
  readonly from: string | undefined
  readonly to: string
  /** `'start'`, `'failover'` after a loss, or `'handover'` when failing back or following a redirect. */
  readonly reason: 'start' | 'failover' | 'handover'
}

/** A broker turned unhealthy. */
export interface BrokerDownEvent {
  readonly broker: string
}

/** A broker turned healthy. */
export interface BrokerUpEvent {
  readonly broker: string
}

/** No broker is healthy; the pool keeps probing with backoff. */
export interface AllDownEvent {
  readonly brokers: readonly string[]
}

/** One broker as the pool sees it. */
export interface BrokerStatus {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly connected: boolean
  readonly latencyMs: number | undefined
  readonly outstanding: number
  readonly region: string | undefined
}

/** Counters since the pool was created, for metrics. */
export interface BrokerPoolStats {
  readonly mode: 'failover' | 'all'
  /** The broker of the active connection (failover mode). */
  readonly active: string | undefined
  readonly brokers: readonly BrokerStatus[]
  readonly failovers: number
  readonly published: number
  readonly acknowledged: number
  /** Sends of a publish after the first (replays after a failover). */
  readonly resent: number
  /** Publishes taken and not yet acknowledged. */
  readonly buffered: number
  readonly bufferedBytes: number
  readonly droppedQos0: number
  readonly rejectedBufferFull: number
  readonly qos2Interrupted: number
  readonly ackTimeouts: number
  /** Publishes given up after connections were lost again and again while they were in flight. */
  readonly abandoned: number
  readonly probes: number
  readonly probeFailures: number
}

type Counter =
  | 'failovers' | 'published' | 'acknowledged' | 'resent' | 'droppedQos0' | 'rejectedBufferFull' | 'qos2Interrupted'
  | 'ackTimeouts' | 'abandoned' | 'probes' | 'probeFailures'

interface ProbeSchedule {
  timer: NodeJS.Timeout | undefined
  readonly backoff: DecorrelatedJitterBackoff
  /** Round trip of successful probes, for a probe timeout that fits the link. */
  readonly roundTrip: Ewma
  running: Promise<void> | undefined
}

interface Writable {
  readonly backend: Backend<BrokerEndpoint>
  readonly connection: BrokerConnection
}

type ServeOutcome = 'lost' | 'handover' | 'closed'

/** Losses in a row with the same publish in flight before it is abandoned. */
const ABANDON_AFTER_LOSSES = 3

/**
 * Client-side balancing and failover over several MQTT brokers, as the
 * kernel's transport. In `failover` mode it holds one connection and moves it
 * to the next healthy broker when it is lost, resubscribes every route and
 * resends, in order, every publish not yet acknowledged; in `all` mode it
 * connects to every broker and spreads publishes over them. Brokers are
 * checked by probes of their own (CONNECT/CONNACK) and by what the
 * connections see; down brokers are retried with decorrelated jitter.
 *
 * @example
 * const pool = new BrokerPool({ brokers: ['mqtt://b1:1883', 'mqtt://b2:1883'], clientId: 'billing-1' })
 * const app = Application.create({ router, transport: pool })
 * pool.onFailover((e) => log.warn('failover', e))
 */
export class BrokerPool implements MqttTransport, HealthCheckSource, MeasuredPool {
  /** The `pool` label of its metrics. */
  readonly metricsLabel = 'mqtt'
  readonly #options: ResolvedBrokerPoolOptions
  readonly #log: Logger
  readonly #set: BackendSet<BrokerEndpoint>
  readonly #queue: PublishQueue
  /** Connections taking traffic: at most one in failover mode. */
  readonly #connections = new Map<Backend<BrokerEndpoint>, BrokerConnection>()
  /** Connections being set up (CONNACK received, subscriptions not yet settled). */
  readonly #establishing = new Map<Backend<BrokerEndpoint>, BrokerConnection>()
  readonly #subscribed = new WeakMap<BrokerConnection, Set<string>>()
  readonly #subscriptions = new Map<string, Subscription>()
  readonly #probes = new Map<Backend<BrokerEndpoint>, ProbeSchedule>()
  readonly #lateAcks = new Map<Backend<BrokerEndpoint>, number>()
  /** Brokers kept out whatever their probes say, for a time that doubles with each offence. */
  readonly #holdDown = new Map<Backend<BrokerEndpoint>, { until: number; count: number }>()
  /** Connections handing over: no longer taking traffic, not yet closed. */
  readonly #retiring = new Set<BrokerConnection>()
  #handingOverTo: Backend<BrokerEndpoint> | undefined
  #redirectFrom: Backend<BrokerEndpoint> | undefined
  readonly #counts: Record<Counter, number> = {
    failovers: 0, published: 0, acknowledged: 0, resent: 0, droppedQos0: 0, rejectedBufferFull: 0, qos2Interrupted: 0,
    ackTimeouts: 0, abandoned: 0, probes: 0, probeFailures: 0,
  }
  readonly #failover: TypedEvent<FailoverEvent>
  readonly #brokerDown: TypedEvent<BrokerDownEvent>
  readonly #brokerUp: TypedEvent<BrokerUpEvent>
  readonly #allDown: TypedEvent<AllDownEvent>
  readonly #activeChanged: TypedEvent<ActiveBrokerEvent>
  readonly #ready = new TypedEvent<boolean>()
  readonly #requests: TypedEvent<RequestObserved>
  #previousActive: string | undefined
  #receiver: MessageReceiver | undefined
  #state: 'created' | 'running' | 'closed' = 'created'
  #wakers = new Set<() => void>()
  /** Failover mode: the next connection should go to this broker (a redirect, or failing back). */
  #next: Backend<BrokerEndpoint> | undefined
  /** Failover mode: ends the active connection's service for a planned handover. */
  #handover: (() => void) | undefined
  #announcedAllDown = false
  #lost: { readonly from: string; readonly at: number } | undefined
  #lastError: unknown
  #sweep: NodeJS.Timeout | undefined
  #subscriptionVersion = 0

  constructor(options: BrokerPoolOptions) {
    this.#options = resolveBrokerPoolOptions(options, `routemq-${hostname()}-${process.pid}`)
    this.#log = safeLogger(options.logger ?? silentLogger)
    const onListenerError = (error: unknown): void => this.#log.error('a broker pool event listener threw', { error })
    this.#set = new BackendSet(
      this.#options.brokers.map((endpoint) => ({ id: endpoint.id, target: endpoint, weight: endpoint.weight, region: endpoint.region })),
      {
        strategy: createStrategy(this.#options.strategy),
        health: { rise: this.#options.health.rise, fall: this.#options.health.fall },
        ejection: { baseMs: this.#options.health.backoffBaseMs * 4, maxMs: this.#options.health.backoffCapMs },
        onListenerError,
      },
    )
    this.#queue = new PublishQueue(this.#options.offlineBuffer)
    this.#failover = new TypedEvent(onListenerError)
    this.#brokerDown = new TypedEvent(onListenerError)
    this.#brokerUp = new TypedEvent(onListenerError)
    this.#allDown = new TypedEvent(onListenerError)
    this.#activeChanged = new TypedEvent(onListenerError)
    this.#requests = new TypedEvent(onListenerError)
    this.#set.onStateChange((change) => this.#onStateChange(change))
  }

  /** True while at least one broker connection takes publishes. */
  get connected(): boolean {
    return this.#connections.size > 0
  }

  get persistentSession(): boolean {
    return !this.#options.clean
  }

  get #running(): boolean {
    return this.#state === 'running'
  }

  /** The resolved options (passwords included: do not log them). */
  get options(): ResolvedBrokerPoolOptions {
    return this.#options
  }

  get stats(): BrokerPoolStats {
    const active = this.#options.mode === 'failover' ? [...this.#connections.keys()][0]?.id : undefined
    return Object.freeze({
      mode: this.#options.mode,
      active,
      brokers: this.#set.backends.map((backend) => ({
        id: backend.id,
        state: backend.state,
        connected: this.#connections.has(backend),
        latencyMs: backend.latencyMs,
        outstanding: backend.outstanding,
        region: backend.region,
      })),
      ...this.#counts,
      buffered: this.#queue.size,
      bufferedBytes: this.#queue.bytes,
    })
  }

  /** After a lost connection, when another one takes publishes (failover mode). */
  onFailover(listener: (event: FailoverEvent) => void): Disposer {
    return this.#failover.on(listener)
  }

  onBrokerDown(listener: (event: BrokerDownEvent) => void): Disposer {
    return this.#brokerDown.on(listener)
  }

  onBrokerUp(listener: (event: BrokerUpEvent) => void): Disposer {
    return this.#brokerUp.on(listener)
  }

  /** Failover mode: each time the active connection is to another broker, and why. */
  onActiveChange(listener: (event: ActiveBrokerEvent) => void): Disposer {
    return this.#activeChanged.on(listener)
  }

  /** No broker is healthy. Publishes are buffered (within bounds) until one is. */
  onAllDown(listener: (event: AllDownEvent) => void): Disposer {
    return this.#allDown.on(listener)
  }

  /** Each publish as a broker acknowledged it (QoS 0: wrote it) or its connection failed under it, for metrics. */
  onRequest(listener: (request: RequestObserved) => void): Disposer {
    return this.#requests.on(listener)
  }

  /** Brokers up or down, failovers and the offline buffer, for metrics. */
  metricsSnapshot(): PoolMetricsSnapshot {
    return {
      backends: this.#set.backends.map((backend) => ({ id: backend.id, up: backend.state === 'healthy' })),
      failovers: this.#counts.failovers,
      offlineBuffer: { messages: this.#queue.size, bytes: this.#queue.bytes },
    }
  }

  /**
   * One non-critical check per broker, `broker/<id>`, reading what the
   * pool's own probes and connections found (no extra connection), and run
   * again at once whenever a broker goes down or up. Readiness needs the
   * transport connected, which is the pool as a whole.
   */
  healthChecks(): readonly HealthCheckDefinition[] {
    const watch = (recheck: () => void): Disposer => {
      const offDown = this.#brokerDown.on(recheck)
      const offUp = this.#brokerUp.on(recheck)
      return () => {
        offDown()
        offUp()
      }
    }
    return this.#set.backends.map((backend) => ({
      name: `broker/${backend.id}`,
      componentType: 'mqtt-broker',
      critical: false,
      rise: 1,
      fall: 1,
      intervalMs: this.#options.health.probeIntervalMs,
      watch,
      check: () => {
        if (backend.state === 'unknown') return { pending: true }
        if (backend.state === 'unhealthy') {
          const held = this.#holdDown.get(backend)
          throw new Error(held && held.until > Date.now() ? 'held out after misbehaving (late acknowledgements, refused subscriptions or redirects)' : 'its probes fail')
        }
        return backend.latencyMs === undefined ? undefined : { observedValue: Math.round(backend.latencyMs * 100) / 100, observedUnit: 'ms' }
      },
    }))
  }

  async connect(receiver: MessageReceiver): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('connect')
    if (this.#state === 'running') throw new ApplicationStateError('This broker pool is already connected; a pool serves one application.')
    this.#receiver = receiver
    this.#state = 'running'
    const ready = new Promise<boolean>((resolve) => {
      const off = this.#ready.on((connected) => {
        off()
        clearTimeout(timer)
        resolve(connected)
      })
      const timer = setTimeout(() => {
        off()
        resolve(false)
      }, this.#options.startTimeoutMs)
    })
    for (const backend of this.#set.backends) {
      this.#probes.set(backend, { timer: undefined, running: undefined, backoff: this.#backoff(), roundTrip: new Ewma(30_000) })
      this.#scheduleProbe(backend, 0)
    }
    const sweepEvery = Math.max(50, Math.floor(this.#options.health.publishAckTimeoutMs / 3))
    this.#sweep = setInterval(() => this.#sweepAckTimeouts(), sweepEvery)
    if (this.#options.mode === 'failover') this.#guard(this.#maintainActive(), 'failover loop')
    else for (const backend of this.#set.backends) this.#guard(this.#maintainBroker(backend), `connection loop of ${backend.id}`)
    if (await ready) return
    // close() may have run while we waited.
    if (!this.#running) throw new TransportClosedError('connect')
    const lastError = this.#lastError
    await this.close()
    throw new ConnectionFailedError(`any of ${this.#set.backends.map((b) => b.id).join(', ')}`, lastError ?? 'no broker answered')
  }

  async subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('subscribe')
    for (const subscription of subscriptions) this.#subscriptions.set(subscription.topic, subscription)
    this.#subscriptionVersion++
    await Promise.all([...this.#connections.values()].map((connection) => this.#syncSubscriptions(connection)))
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('unsubscribe')
    for (const topic of topics) this.#subscriptions.delete(topic)
    this.#subscriptionVersion++
    await Promise.all([...this.#connections.values()].map((connection) => this.#syncSubscriptions(connection)))
  }

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new TransportClosedError('publish'))
    // A broker drops the connection over a bad topic; resending it would drop every broker in turn.
    const problem = publishTopicProblem(topic)
    if (problem) return Promise.reject(new InvalidTopicError(String(topic), problem))
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    return new Promise<void>((resolve, reject) => {
      // A publish never overtakes one still waiting for a broker.
      const target = this.#queue.pendingCount === 0 ? this.#writable() : undefined
      if (!target && (options.qos ?? 0) === 0 && this.#options.offlineBuffer.qos0 === 'drop') {
        this.#counts.droppedQos0++
        reject(new PublishDroppedError(topic))
        return
      }
      const entry = outgoing(topic, body, options, resolve, reject)
      try {
        this.#queue.add(entry)
      } catch (error) {
        this.#counts.rejectedBufferFull++
        reject(error as Error)
        return
      }
      this.#counts.published++
      if (target) this.#send(entry, target)
    })
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#ready.emit(false)
    clearInterval(this.#sweep)
    for (const schedule of this.#probes.values()) clearTimeout(schedule.timer)
    this.#wake()
    const connections = [...this.#connections.values()]
    this.#connections.clear()
    const establishing = [...this.#establishing.values()]
    await Promise.all([
      ...connections.map((connection) => connection.close(this.#options.closeTimeoutMs)),
      ...[...this.#retiring].map((connection) => connection.close(this.#options.closeTimeoutMs)),
      ...establishing.map((connection) => connection.close(0)),
      ...[...this.#probes.values()].map((schedule) => schedule.running),
    ])
    for (const entry of this.#queue.all()) {
      this.#queue.remove(entry)
      entry.reject(new TransportClosedError('complete this publish, which no broker acknowledged'))
    }
  }

  /** Failover mode: keeps exactly one connection, to the best healthy broker. */
  async #maintainActive(): Promise<void> {
    const tried = new Set<Backend<BrokerEndpoint>>()
    const backoff = this.#backoff()
    while (this.#state === 'running') {
      const backend = this.#set.pick({ prefer: this.#preference(), exclude: new Set([...tried, ...this.#heldDown()]) })
      if (!backend) {
        if (this.#set.available().length === 0) this.#announceAllDown()
        tried.clear()
        if (await this.#idle(backoff.next())) backoff.reset()
        continue
      }
      tried.add(backend)
      const handover = this.#handingOverTo === backend
      this.#handingOverTo = undefined
      const connection = await this.#establish(backend)
      if (!connection) {
        // A failed failback is not retried at every good probe: that would hand over in a loop.
        if (handover) this.#holdOff(backend, 'failing back to it failed')
        continue
      }
      tried.clear()
      backoff.reset()
      await this.#serve(backend, connection)
    }
  }

  /** All mode: keeps a connection to one broker whenever it is healthy. */
  async #maintainBroker(backend: Backend<BrokerEndpoint>): Promise<void> {
    const backoff = this.#backoff()
    while (this.#state === 'running') {
      if (!backend.isAvailable(Date.now()) || this.#isHeldDown(backend)) {
        if (await this.#idle(backoff.next())) backoff.reset()
        continue
      }
      const connection = await this.#establish(backend)
      if (!connection) {
        if (await this.#idle(backoff.next())) backoff.reset()
        continue
      }
      backoff.reset()
      await this.#serve(backend, connection)
    }
  }

  /** Connects to `backend` and subscribes every route; `undefined` (and the broker reported) on failure. */
  async #establish(backend: Backend<BrokerEndpoint>): Promise<BrokerConnection | undefined> {
    let connection: BrokerConnection | undefined
    try {
      connection = await BrokerConnection.open({
        endpoint: backend.target,
        clientId: this.#options.mode === 'all' ? `${this.#options.clientId}-${backend.index + 1}` : this.#options.clientId,
        clean: this.#options.clean,
        sessionExpirySeconds: this.#options.sessionExpirySeconds,
        protocolVersion: this.#options.protocolVersion,
        keepaliveSeconds: this.#options.keepaliveSeconds,
        connectTimeoutMs: this.#options.connectTimeoutMs,
        ackOrder: this.#options.ackOrder,
        receiver: this.#receiver!,
        log: this.#log,
      })
      this.#establishing.set(backend, connection)
      if (this.#state !== 'running') throw new TransportClosedError('connect')
      await withinTime(this.#syncSubscriptions(connection), this.#options.connectTimeoutMs, 'no SUBACK')
      // A probe may have taken the broker out while this was being set up.
      if (this.#state !== 'running' || !connection.open || !backend.isAvailable(Date.now())) {
        await connection.close(0)
        return undefined
      }
      this.#set.reportSuccess(backend, connection.connectMs)
      // A CONNACK round trip is as good a sample for the probe timeout as a probe's own.
      this.#probes.get(backend)?.roundTrip.observe(connection.connectMs, Date.now())
      return connection
    } catch (error) {
      await connection?.close(0)
      if (this.#state !== 'running') return undefined
      this.#lastError = error
      this.#log.warn('could not connect to broker', { broker: backend.id, error })
      // A refused subscription is the configuration's fault, not the broker's health.
      if (isSubscriptionRejectedError(error)) {
        this.#holdOff(backend, 'it refused a subscription')
        return undefined
      }
      if (isRefused(error)) this.#set.markDown(backend)
      else this.#set.reportFailure(backend, { eject: true })
      return undefined
    } finally {
      if (connection && this.#establishing.get(backend) === connection) this.#establishing.delete(backend)
    }
  }

  /** Brings a connection's subscriptions in line with the pool's, however often they change meanwhile. */
  async #syncSubscriptions(connection: BrokerConnection): Promise<void> {
    let subscribed = this.#subscribed.get(connection)
    if (!subscribed) this.#subscribed.set(connection, (subscribed = new Set()))
    let version = -1
    while (version !== this.#subscriptionVersion && connection.open) {
      version = this.#subscriptionVersion
      const add = [...this.#subscriptions.values()].filter((s) => !subscribed.has(s.topic))
      const remove = [...subscribed].filter((topic) => !this.#subscriptions.has(topic))
      try {
        await connection.subscribe(add, this.#options.protocolVersion)
        for (const s of add) subscribed.add(s.topic)
        await connection.unsubscribe(remove)
        for (const topic of remove) subscribed.delete(topic)
      } catch (error) {
        // A connection lost meanwhile is taken care of by its loss; the next one subscribes afresh.
        if (connection.open || isSubscriptionRejectedError(error)) throw error
        return
      }
    }
  }

  /** Uses the connection until it is lost or handed over, then takes back what it had in flight. */
  async #serve(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<ServeOutcome> {
    if (this.#state !== 'running' || !connection.open) {
      await connection.close(0)
      return 'closed'
    }
    const lost = new Promise<ServeOutcome>((resolve) => connection.onClose(() => resolve('lost')))
    const handover = new Promise<ServeOutcome>((resolve) => (this.#handover = () => resolve('handover')))
    const offRedirect = connection.onRedirect((reference) => this.#redirect(reference, backend))
    this.#connections.set(backend, connection)
    this.#lateAcks.delete(backend)
    this.#announcedAllDown = false
    if (this.#options.mode === 'failover') {
      const reason = this.#previousActive === undefined ? 'start' : this.#lost ? 'failover' : 'handover'
      this.#activeChanged.emit({ from: this.#previousActive, to: backend.id, reason })
      this.#previousActive = backend.id
    }
    if (this.#lost && this.#options.mode === 'failover') {
      this.#counts.failovers++
      const event: FailoverEvent = { from: this.#lost.from, to: backend.id, gapMs: Date.now() - this.#lost.at, replaying: this.#queue.pendingCount }
      this.#log.warn('failed over to another broker', { ...event })
      this.#failover.emit(event)
    }
    this.#lost = undefined
    this.#log.info('broker connected', { broker: backend.id })
    this.#ready.emit(true)
    this.#flush()
    this.#considerFailBack()
    const outcome = await Promise.race(this.#options.mode === 'failover' ? [lost, handover] : [lost])
    this.#handover = undefined
    offRedirect()
    if (outcome === 'handover') await this.#handOver(backend, connection)
    if (this.#connections.get(backend) === connection) this.#connections.delete(backend)
    this.#takeBack(backend, connection)
    const redirected = outcome === 'lost' && this.#redirectFrom === backend
    if (redirected) this.#redirectFrom = undefined
    if (this.#state === 'running' && outcome === 'lost' && !redirected) {
      this.#log.warn('broker connection lost', { broker: backend.id })
      this.#lost ??= { from: backend.id, at: Date.now() }
      this.#set.markDown(backend)
    }
    this.#flush()
    return outcome
  }

  /**
   * A planned end of service (failing back): no new publishes, let the
   * messages delivered settle and publishes in flight be acknowledged, within
   * `closeTimeoutMs`, then disconnect cleanly. Same client
   * id, so the new connection is made only after this one is gone.
   */
  async #handOver(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    this.#connections.delete(backend)
    this.#retiring.add(connection)
    try {
      // No unsubscribe: a persistent session then keeps what arrives meanwhile for the next connection.
      const deadline = Date.now() + this.#options.closeTimeoutMs
      await withinTime(connection.inboundSettled(), this.#options.closeTimeoutMs, '').catch(() => undefined)
      await connection.close(Math.max(0, deadline - Date.now()))
    } finally {
      this.#retiring.delete(connection)
    }
  }

  /** Takes back what a finished connection had in flight: resent later, except QoS 2 and repeat offenders. */
  #takeBack(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    for (const entry of this.#queue.inflightOn(connection)) {
      if ((entry.options.qos ?? 0) === 2) {
        this.#queue.remove(entry)
        this.#counts.qos2Interrupted++
        entry.reject(new Qos2InterruptedError(entry.topic, backend.id))
      } else if (++entry.losses >= ABANDON_AFTER_LOSSES) {
        this.#queue.remove(entry)
        this.#counts.abandoned++
        this.#log.error('publish abandoned: connections kept dropping while it was in flight', { topic: entry.topic, losses: entry.losses })
        entry.reject(new PublishAbandonedError(entry.topic, entry.losses))
      } else {
        this.#queue.markPending(entry)
      }
    }
  }

  /** Sends every waiting publish, oldest first, while a connection takes them. */
  #flush(): void {
    if (this.#queue.pendingCount === 0) return
    for (const entry of this.#queue.pending()) {
      const target = this.#writable()
      if (!target) return
      this.#send(entry, target)
    }
  }

  #writable(): Writable | undefined {
    if (this.#connections.size === 0) return undefined
    if (this.#options.mode === 'failover') {
      for (const [backend, connection] of this.#connections) if (connection.open) return { backend, connection }
      return undefined
    }
    const unconnected = new Set(this.#set.backends.filter((b) => !this.#connections.get(b)?.open))
    const region = this.#options.region
    const backend = this.#set.pick({ exclude: unconnected, prefer: region === undefined ? undefined : (b) => b.region === region })
    const connection = backend && this.#connections.get(backend)
    return backend && connection ? { backend, connection } : undefined
  }

  #send(entry: OutgoingPublish, { backend, connection }: Writable): void {
    const sentAt = Date.now()
    const attempt = this.#queue.markSent(entry, connection, backend.begin(), sentAt)
    if (attempt > 1) this.#counts.resent++
    connection.publish(entry.topic, entry.payload, entry.options, (error) => {
      if (entry.attempt !== attempt || entry.connection !== connection || !this.#queue.has(entry)) return
      if (error) {
        if (this.#requests.listenerCount > 0) this.#requests.emit({ backend: backend.id, durationMs: Date.now() - sentAt, failed: true })
        // A lost connection's publishes are taken back and resent; any other error is the caller's.
        if (!connection.open) return
        this.#queue.remove(entry)
        entry.reject(error)
        return
      }
      if ((entry.options.qos ?? 0) > 0) {
        const ackMs = Date.now() - sentAt
        // Only a timely acknowledgement clears a late streak; a broker that is always late stays late.
        if (ackMs <= this.#options.health.publishAckTimeoutMs) {
          this.#lateAcks.delete(backend)
          this.#holdDown.delete(backend)
        }
        this.#set.reportSuccess(backend, ackMs)
      }
      this.#queue.remove(entry)
      this.#counts.acknowledged++
      if (this.#requests.listenerCount > 0) this.#requests.emit({ backend: backend.id, durationMs: Date.now() - sentAt, failed: false })
      entry.resolve()
    })
  }

  /** A broker that keeps publishes unacknowledged past the timeout is taken out, whatever its probes say. */
  #sweepAckTimeouts(): void {
    const now = Date.now()
    const late = new Set<BrokerConnection>()
    for (const entry of this.#queue.all()) {
      if (entry.state === 'inflight' && (entry.options.qos ?? 0) > 0 && now - entry.sentAt > this.#options.health.publishAckTimeoutMs) {
        late.add(entry.connection!)
      }
    }
    for (const connection of late) {
      const backend = this.#backendOf(connection)
      if (!backend) continue
      this.#counts.ackTimeouts++
      const streak = (this.#lateAcks.get(backend) ?? 0) + 1
      this.#lateAcks.set(backend, streak)
      this.#log.warn('publish not acknowledged in time', { broker: backend.id, timeoutMs: this.#options.health.publishAckTimeoutMs, streak })
      if (streak >= this.#options.health.fall) {
        this.#holdOff(backend, 'its publishes are not acknowledged in time')
        this.#set.markDown(backend)
      } else {
        this.#set.reportFailure(backend)
      }
    }
  }

  #scheduleProbe(backend: Backend<BrokerEndpoint>, delayMs: number): void {
    const schedule = this.#probes.get(backend)
    if (!schedule || this.#state !== 'running' || schedule.running) return
    clearTimeout(schedule.timer)
    schedule.timer = setTimeout(() => {
      const probing = this.#probe(backend, schedule)
      schedule.running = probing
      this.#guard(probing, `probe of ${backend.id}`)
    }, delayMs)
  }

  async #probe(backend: Backend<BrokerEndpoint>, schedule: ProbeSchedule): Promise<void> {
    this.#counts.probes++
    let next: number
    // Long enough for the link as observed, short enough to notice a dead one quickly.
    const observed = schedule.roundTrip.value
    // A down broker gets the full connect timeout, so a link that became slower can still come back.
    const timeoutMs = observed === undefined || backend.state === 'unhealthy'
      ? this.#options.connectTimeoutMs
      : Math.min(this.#options.connectTimeoutMs, Math.max(this.#options.health.probeTimeoutMs, observed * 4))
    try {
      const rttMs = await probeBroker(backend.target, {
        clientId: `${this.#options.clientId}-probe-${backend.index + 1}`,
        timeoutMs,
        protocolVersion: this.#options.protocolVersion,
      })
      if (this.#state !== 'running') return
      schedule.roundTrip.observe(rttMs, Date.now())
      this.#set.reportSuccess(backend, rttMs)
      schedule.backoff.reset()
      next = backend.state === 'healthy' ? this.#options.health.probeIntervalMs : 0
      this.#considerFailBack()
    } catch (error) {
      if (this.#state !== 'running') return
      this.#counts.probeFailures++
      this.#lastError = error
      this.#log.debug('broker probe failed', { broker: backend.id, error })
      this.#set.reportFailure(backend)
      // A first failure is confirmed at once rather than after a full interval.
      next = backend.state === 'unhealthy' ? schedule.backoff.next() : 0
    } finally {
      schedule.running = undefined
    }
    this.#scheduleProbe(backend, next)
  }

  #onStateChange({ backend, to }: BackendStateChange<BrokerEndpoint>): void {
    if (to === 'unhealthy') {
      this.#log.warn('broker down', { broker: backend.id })
      this.#brokerDown.emit({ broker: backend.id })
      const connection = this.#connections.get(backend) ?? this.#establishing.get(backend)
      if (connection) {
        if (this.#connections.get(backend) === connection) this.#lost ??= { from: backend.id, at: Date.now() }
        void connection.close(0)
      }
      if (this.#set.available().length === 0) this.#announceAllDown()
      // From now on a down broker is probed on the backoff schedule (a running probe schedules itself).
      const schedule = this.#probes.get(backend)
      if (schedule && !schedule.running) this.#scheduleProbe(backend, schedule.backoff.next())
    } else if (to === 'healthy') {
      this.#log.info('broker up', { broker: backend.id })
      this.#brokerUp.emit({ broker: backend.id })
      this.#wake()
      this.#flush()
      this.#considerFailBack()
    }
  }

  /** Under the priority strategy, asks the active connection to hand over to a healthier-ranked broker. */
  #considerFailBack(): void {
    if (this.#options.mode !== 'failover' || this.#options.strategy !== 'priority' || !this.#handover) return
    const [active] = this.#connections.keys()
    if (!active) return
    const better = this.#set.pick({
      exclude: new Set(this.#set.backends.filter((b) => b.index >= active.index || b.state !== 'healthy' || this.#isHeldDown(b))),
    })
    if (!better) return
    this.#log.info('failing back to a preferred broker', { from: active.id, to: better.id })
    this.#next = better
    this.#handingOverTo = better
    this.#handover()
  }

  #redirect(reference: string, from: Backend<BrokerEndpoint>): void {
    const { host, port, broker } = findReferencedBroker(reference, this.#options.brokers, from.target.port)
    const target = this.#set.backends.find((b) => b.target === broker)
    if (target) {
      this.#log.info('broker asked us to use another server', { from: from.id, to: target.id })
      this.#next = target
      this.#redirectFrom = from
      // A broker being evacuated must not be failed back to while it still answers probes.
      this.#holdOff(from, 'it asked clients to use another server')
    } else {
      this.#log.warn('broker asked us to use a server that is not in the pool; picking among the configured ones', { from: from.id, reference: `${host}:${port}` })
    }
  }

  #preference(): ((backend: Backend<BrokerEndpoint>) => boolean) | undefined {
    const next = this.#next
    if (next) {
      this.#next = undefined
      return (backend) => backend === next
    }
    const region = this.#options.region
    return region === undefined ? undefined : (backend) => backend.region === region
  }

  /** Keeps `backend` out of failovers, failbacks and all mode for a time that doubles with each offence. */
  #holdOff(backend: Backend<BrokerEndpoint>, reason: string): void {
    const previous = this.#holdDown.get(backend)
    const count = (previous?.count ?? 0) + 1
    const base = Math.max(1000, this.#options.health.publishAckTimeoutMs)
    const ms = Math.min(this.#options.health.backoffCapMs, base * 2 ** (count - 1))
    this.#holdDown.set(backend, { until: Date.now() + ms, count })
    this.#log.warn('broker held out', { broker: backend.id, reason, ms })
  }

  #isHeldDown(backend: Backend<BrokerEndpoint>): boolean {
    return (this.#holdDown.get(backend)?.until ?? 0) > Date.now()
  }

  #heldDown(): Backend<BrokerEndpoint>[] {
    return this.#set.backends.filter((backend) => this.#isHeldDown(backend))
  }

  #announceAllDown(): void {
    if (this.#announcedAllDown) return
    this.#announcedAllDown = true
    this.#log.error('every broker is down; retrying with backoff', { brokers: this.#set.backends.map((b) => b.id) })
    this.#allDown.emit({ brokers: this.#set.backends.map((b) => b.id) })
  }

  /** A background loop must never become an unhandled rejection; if one dies, say so loudly. */
  #guard(loop: Promise<void>, name: string): void {
    loop.catch((error: unknown) => this.#log.error(`broker pool ${name} stopped unexpectedly`, { error }))
  }

  #backendOf(connection: BrokerConnection): Backend<BrokerEndpoint> | undefined {
    for (const [backend, c] of this.#connections) if (c === connection) return backend
    return undefined
  }

  #backoff(): DecorrelatedJitterBackoff {
    return new DecorrelatedJitterBackoff({ baseMs: this.#options.health.backoffBaseMs, capMs: this.#options.health.backoffCapMs })
  }

  /** Waits `ms`, or less if a broker comes up or the pool closes; true when woken early. */
  #idle(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer)
        this.#wakers.delete(wake)
        resolve(woken)
      }
      const wake = (): void => done(true)
      const timer = setTimeout(() => done(false), ms)
      this.#wakers.add(wake)
    })
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake()
  }
}

function isRefused(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH'
}

/** Rejects with `reason` if `promise` has not settled within `ms`. */
function withinTime<T>(promise: Promise<T>, ms: number, reason: string): Promise<T> {
  return raceTimeout(promise, ms, (): never => {
    throw new Error(`${reason} within ${ms} ms`)
  })
}
