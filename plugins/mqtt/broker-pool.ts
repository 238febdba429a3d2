import { hostname } from 'node:os'
import { Backend } from '../../src/balancing/backend.js'
import { BackendSet, type BackendStateChange } from '../../src/balancing/backend-set.js'
import { createStrategy } from '../../src/balancing/create-strategy.js'
import { DecorrelatedJitterBackoff } from '../../src/balancing/decorrelated-jitter-backoff.js'
import { ApplicationStateError } from '../../src/routemq/errors/application-state-error.js'
import { ConnectionFailedError } from '../../src/routemq/errors/connection-failed-error.js'
import { TransportClosedError } from '../../src/routemq/errors/transport-closed-error.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/logger.js'
import type { MessageReceiver, MqttTransport, PublishOptions, Subscription } from '../../src/routemq/mqtt-transport.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { BrokerConnection } from './broker-connection.js'
import { resolveBrokerPoolOptions, type BrokerPoolOptions, type ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { probeBroker } from './broker-probe.js'
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
  readonly probes: number
  readonly probeFailures: number
}

type Counter = 'failovers' | 'published' | 'acknowledged' | 'resent' | 'droppedQos0' | 'rejectedBufferFull' | 'qos2Interrupted' | 'ackTimeouts' | 'probes' | 'probeFailures'

interface ProbeSchedule {
  timer: NodeJS.Timeout | undefined
  readonly backoff: DecorrelatedJitterBackoff
  running: boolean
}

interface Writable {
  readonly backend: Backend<BrokerEndpoint>
  readonly connection: BrokerConnection
}

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
export class BrokerPool implements MqttTransport {
  readonly #options: ResolvedBrokerPoolOptions
  readonly #log: Logger
  readonly #set: BackendSet<BrokerEndpoint>
  readonly #queue: PublishQueue
  readonly #connections = new Map<Backend<BrokerEndpoint>, BrokerConnection>()
  readonly #subscriptions = new Map<string, Subscription>()
  readonly #probes = new Map<Backend<BrokerEndpoint>, ProbeSchedule>()
  readonly #counts: Record<Counter, number> = {
    failovers: 0, published: 0, acknowledged: 0, resent: 0, droppedQos0: 0, rejectedBufferFull: 0, qos2Interrupted: 0,
    ackTimeouts: 0, probes: 0, probeFailures: 0,
  }
  readonly #failover: TypedEvent<FailoverEvent>
  readonly #brokerDown: TypedEvent<BrokerDownEvent>
  readonly #brokerUp: TypedEvent<BrokerUpEvent>
  readonly #allDown: TypedEvent<AllDownEvent>
  readonly #ready = new TypedEvent<void>()
  #receiver: MessageReceiver | undefined
  #state: 'created' | 'running' | 'closed' = 'created'
  #wakers: (() => void)[] = []
  #redirectTo: Backend<BrokerEndpoint> | undefined
  #announcedAllDown = false
  #lost: { readonly from: string; readonly at: number } | undefined
  #lastError: unknown
  #sweep: NodeJS.Timeout | undefined
  #subscriptionVersion = 0
  #switching = new Set<BrokerConnection>()

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
    this.#set.onStateChange((change) => this.#onStateChange(change))
  }

  /** True while at least one broker connection takes publishes. */
  get connected(): boolean {
    return this.#connections.size > 0
  }

  get persistentSession(): boolean {
    return !this.#options.clean
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

  /** No broker is healthy. Publishes are buffered (within bounds) until one is. */
  onAllDown(listener: (event: AllDownEvent) => void): Disposer {
    return this.#allDown.on(listener)
  }

  async connect(receiver: MessageReceiver): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('connect')
    if (this.#state === 'running') throw new ApplicationStateError('This broker pool is already connected; a pool serves one application.')
    this.#receiver = receiver
    this.#state = 'running'
    const ready = new Promise<boolean>((resolve) => {
      const off = this.#ready.on(() => {
        off()
        clearTimeout(timer)
        resolve(true)
      })
      const timer = setTimeout(() => {
        off()
        resolve(false)
      }, this.#options.startTimeoutMs)
    })
    for (const backend of this.#set.backends) this.#probes.set(backend, { timer: undefined, running: false, backoff: this.#backoff() })
    for (const backend of this.#set.backends) this.#scheduleProbe(backend, 0)
    const sweepEvery = Math.max(50, Math.floor(this.#options.health.publishAckTimeoutMs / 3))
    this.#sweep = setInterval(() => this.#sweepAckTimeouts(), sweepEvery)
    if (this.#options.mode === 'failover') void this.#maintainActive()
    else for (const backend of this.#set.backends) void this.#maintainBroker(backend)
    if (!(await ready)) {
      const lastError = this.#lastError
      await this.close()
      throw new ConnectionFailedError(`any of ${this.#set.backends.map((b) => b.id).join(', ')}`, lastError ?? 'no broker answered')
    }
  }

  async subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('subscribe')
    for (const subscription of subscriptions) this.#subscriptions.set(subscription.topic, subscription)
    this.#subscriptionVersion++
    await Promise.all([...this.#connections.values()].map((c) => c.subscribe(subscriptions, this.#options.protocolVersion)))
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('unsubscribe')
    for (const topic of topics) this.#subscriptions.delete(topic)
    this.#subscriptionVersion++
    await Promise.all([...this.#connections.values()].map((c) => c.unsubscribe(topics)))
  }

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new TransportClosedError('publish'))
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
    clearInterval(this.#sweep)
    for (const schedule of this.#probes.values()) clearTimeout(schedule.timer)
    this.#wake()
    const connections = [...this.#connections.values()]
    this.#connections.clear()
    await Promise.all(connections.map((connection) => connection.close(this.#options.closeTimeoutMs)))
    for (const entry of this.#queue.all()) {
      this.#queue.remove(entry)
      entry.reject(new TransportClosedError('complete this publish, which no broker acknowledged'))
    }
  }

  async #maintainActive(): Promise<void> {
    const tried = new Set<Backend<BrokerEndpoint>>()
    const backoff = this.#backoff()
    while (this.#state === 'running') {
      const backend = this.#set.pick({ prefer: this.#preference(), exclude: tried })
      if (!backend) {
        if (this.#set.available().length === 0) this.#announceAllDown()
        tried.clear()
        await this.#idle(backoff.next())
        continue
      }
      tried.add(backend)
      const connection = await this.#establish(backend)
      if (!connection) continue
      tried.clear()
      backoff.reset()
      await this.#serve(backend, connection)
    }
  }

  async #maintainBroker(backend: Backend<BrokerEndpoint>): Promise<void> {
    const backoff = this.#backoff()
    while (this.#state === 'running') {
      if (!backend.isAvailable(Date.now())) {
        await this.#idle(backoff.next())
        continue
      }
      const connection = await this.#establish(backend)
      if (!connection) {
        await this.#idle(backoff.next())
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
      let version = -1
      // Subscriptions may change while these are in flight; settle on a stable set before taking traffic.
      while (version !== this.#subscriptionVersion && this.#state === 'running') {
        version = this.#subscriptionVersion
        await connection.subscribe([...this.#subscriptions.values()], this.#options.protocolVersion)
      }
      if (this.#state !== 'running' || !connection.open) {
        await connection.close(0)
        return undefined
      }
      this.#set.reportSuccess(backend, connection.connectMs)
      return connection
    } catch (error) {
      this.#lastError = error
      this.#log.warn('could not connect to broker', { broker: backend.id, error })
      await connection?.close(0)
      if (isRefused(error)) this.#set.markDown(backend)
      else this.#set.reportFailure(backend, { eject: true })
      return undefined
    }
  }

  /** Uses the connection until it is lost, then takes back what it had in flight. */
  async #serve(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    const lost = new Promise<Error | undefined>((resolve) => connection.onClose(resolve))
    connection.onRedirect((reference) => this.#redirect(reference, backend))
    this.#connections.set(backend, connection)
    this.#announcedAllDown = false
    if (this.#lost && this.#options.mode === 'failover') {
      this.#counts.failovers++
      const event: FailoverEvent = { from: this.#lost.from, to: backend.id, gapMs: Date.now() - this.#lost.at, replaying: this.#queue.pendingCount }
      this.#log.warn('failed over to another broker', { ...event })
      this.#failover.emit(event)
    }
    this.#lost = undefined
    this.#log.info('broker connected', { broker: backend.id })
    this.#ready.emit()
    this.#flush()
    const reason = await lost
    this.#connections.delete(backend)
    const planned = this.#switching.delete(connection)
    for (const entry of this.#queue.inflightOn(connection)) {
      if ((entry.options.qos ?? 0) === 2) {
        this.#queue.remove(entry)
        this.#counts.qos2Interrupted++
        entry.reject(new Qos2InterruptedError(entry.topic, backend.id))
      } else {
        this.#queue.markPending(entry)
      }
    }
    if (this.#state !== 'running') return
    if (!planned) {
      this.#log.warn('broker connection lost', { broker: backend.id, error: reason })
      this.#lost ??= { from: backend.id, at: Date.now() }
      this.#set.markDown(backend)
    }
    this.#flush()
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
      for (const [backend, connection] of this.#connections) if (connection.open && !this.#switching.has(connection)) return { backend, connection }
      return undefined
    }
    const unconnected = new Set(this.#set.backends.filter((b) => !this.#connections.get(b)?.open))
    const backend = this.#set.pick({ exclude: unconnected })
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
        // A lost connection's publishes are taken back and resent; any other error is the caller's.
        if (!connection.open) return
        this.#queue.remove(entry)
        entry.reject(error)
        return
      }
      if ((entry.options.qos ?? 0) > 0) this.#set.reportSuccess(backend, Date.now() - sentAt)
      this.#queue.remove(entry)
      this.#counts.acknowledged++
      entry.resolve()
    })
  }

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
      this.#log.warn('publish not acknowledged in time', { broker: backend.id, timeoutMs: this.#options.health.publishAckTimeoutMs })
      this.#set.reportFailure(backend)
    }
  }

  #scheduleProbe(backend: Backend<BrokerEndpoint>, delayMs: number): void {
    const schedule = this.#probes.get(backend)
    if (!schedule || this.#state !== 'running') return
    clearTimeout(schedule.timer)
    schedule.timer = setTimeout(() => void this.#probe(backend, schedule), delayMs)
  }

  async #probe(backend: Backend<BrokerEndpoint>, schedule: ProbeSchedule): Promise<void> {
    if (schedule.running) return
    schedule.running = true
    this.#counts.probes++
    let next: number
    try {
      const rttMs = await probeBroker(backend.target, {
        clientId: `${this.#options.clientId}-probe-${backend.index + 1}`,
        timeoutMs: this.#options.health.probeTimeoutMs,
        protocolVersion: this.#options.protocolVersion,
      })
      if (this.#state !== 'running') return
      this.#set.reportSuccess(backend, rttMs)
      schedule.backoff.reset()
      next = backend.state === 'healthy' ? this.#options.health.probeIntervalMs : 0
    } catch (error) {
      if (this.#state !== 'running') return
      this.#counts.probeFailures++
      this.#lastError = error
      this.#log.debug('broker probe failed', { broker: backend.id, error })
      this.#set.reportFailure(backend)
      // A first failure is confirmed at once rather than after a full interval.
      next = backend.state === 'unhealthy' ? schedule.backoff.next() : 0
    } finally {
      schedule.running = false
    }
    this.#scheduleProbe(backend, next)
  }

  #onStateChange({ backend, to }: BackendStateChange<BrokerEndpoint>): void {
    if (to === 'unhealthy') {
      this.#log.warn('broker down', { broker: backend.id })
      this.#brokerDown.emit({ broker: backend.id })
      const connection = this.#connections.get(backend)
      if (connection) {
        this.#lost ??= { from: backend.id, at: Date.now() }
        void connection.close(0)
      }
      if (this.#set.available().length === 0) this.#announceAllDown()
      // Probe a down broker on the backoff schedule from now on.
      this.#scheduleProbe(backend, this.#probes.get(backend)?.backoff.next() ?? 0)
    } else if (to === 'healthy') {
      this.#log.info('broker up', { broker: backend.id })
      this.#brokerUp.emit({ broker: backend.id })
      this.#wake()
      this.#failBack(backend)
    }
  }

  /** Under the priority strategy, returns to a higher-priority broker once it is healthy again, make before break. */
  #failBack(backend: Backend<BrokerEndpoint>): void {
    if (this.#options.mode !== 'failover' || this.#options.strategy !== 'priority') return
    const [current] = this.#connections
    if (!current || current[0].index <= backend.index || this.#switching.size > 0) return
    const [from, old] = current
    this.#switching.add(old)
    void (async () => {
      const connection = await this.#establish(backend)
      if (!connection) {
        this.#switching.delete(old)
        return
      }
      this.#log.info('failing back to a preferred broker', { from: from.id, to: backend.id })
      // The old connection stops receiving, finishes what it delivered, then closes.
      await old.unsubscribe([...this.#subscriptions.keys()]).catch(() => undefined)
      void this.#serve(backend, connection)
      await settledWithin(old.inboundSettled(), this.#options.closeTimeoutMs)
      await old.close(this.#options.closeTimeoutMs)
    })()
  }

  #redirect(reference: string, from: Backend<BrokerEndpoint>): void {
    const { host, port, broker } = findReferencedBroker(reference, this.#options.brokers, from.target.port)
    const target = this.#set.backends.find((b) => b.target === broker)
    if (target) {
      this.#log.info('broker asked us to use another server', { from: from.id, to: target.id })
      this.#redirectTo = target
    } else {
      this.#log.warn('broker asked us to use a server that is not in the pool; picking among the configured ones', { from: from.id, reference: `${host}:${port}` })
    }
  }

  #preference(): ((backend: Backend<BrokerEndpoint>) => boolean) | undefined {
    const redirect = this.#redirectTo
    if (redirect) {
      this.#redirectTo = undefined
      return (backend) => backend === redirect
    }
    const region = this.#options.region
    return region === undefined ? undefined : (backend) => backend.region === region
  }

  #announceAllDown(): void {
    if (this.#announcedAllDown) return
    this.#announcedAllDown = true
    this.#log.error('every broker is down; retrying with backoff', { brokers: this.#set.backends.map((b) => b.id) })
    this.#allDown.emit({ brokers: this.#set.backends.map((b) => b.id) })
  }

  #backendOf(connection: BrokerConnection): Backend<BrokerEndpoint> | undefined {
    for (const [backend, c] of this.#connections) if (c === connection) return backend
    return undefined
  }

  #backoff(): DecorrelatedJitterBackoff {
    return new DecorrelatedJitterBackoff({ baseMs: this.#options.health.backoffBaseMs, capMs: this.#options.health.backoffCapMs })
  }

  /** Waits `ms`, or less if a broker comes up or the pool closes. */
  #idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done(): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wakers.push(done)
    })
  }

  #wake(): void {
    const wakers = this.#wakers
    this.#wakers = []
    for (const wake of wakers) wake()
  }
}

function isRefused(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH'
}

function settledWithin(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
