import { hostname } from 'node:os'
import type { Backend } from '../../src/balancing/backend.js'
import { BackendSet, type BackendStateChange } from '../../src/balancing/backend-set.js'
import { createStrategy } from '../../src/balancing/create-strategy.js'
import { ApplicationStateError } from '../../src/routemq/plugin-api.js'
import { ConnectionFailedError } from '../../src/routemq/plugin-api.js'
import { TransportClosedError } from '../../src/routemq/plugin-api.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/plugin-api.js'
import type { MessageReceiver, MqttTransport, PublishOptions, Subscription } from '../../src/routemq/plugin-api.js'
import { verifyDeferredAcks } from '../../src/routemq/transport-api.js'
import { assertPublishable } from '../../src/routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { HealthCheckDefinition, HealthCheckSource } from '../../src/health/health-check.js'
import type { MeasuredPool, PoolMetricsSnapshot, RequestObserved } from '../../src/metrics/measured-pool.js'
import { AckWatch } from './ack-watch.js'
import { AllBrokersSupervisor } from './all-brokers-supervisor.js'
import { BrokerDropWatch } from './broker-drop-watch.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { BrokerLinks } from './broker-links.js'
import { resolveBrokerPoolOptions, type BrokerPoolOptions, type EffectiveBrokerPoolMode, type ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { ControlTopics } from './control-topics.js'
import { BrokerPoolTracing } from './failover-tracing.js'
import { FailoverSupervisor, type ActiveBrokerEvent, type FailoverEvent } from './failover-supervisor.js'
import { HoldDown } from './hold-down.js'
import { LiveConnections } from './live-connections.js'
import { ProbeScheduler } from './probe-scheduler.js'
import { PublishSender } from './publish-sender.js'
import type { AllDownEvent, BrokerDownEvent, BrokerPoolStats, BrokerUpEvent } from './broker-pool-stats.js'
import { brokerHealthChecks } from './broker-health-checks.js'
import { SessionSteward, type SessionAdoptedEvent } from './session-steward.js'
import { TopologyGuard } from './topology-guard.js'
import { SubscriptionSync } from './subscription-sync.js'
import { WakeSignal } from '../../src/wake-signal.js'

export type { ActiveBrokerEvent, FailoverEvent } from './failover-supervisor.js'
export type { AllDownEvent, BrokerDownEvent, BrokerPoolStats, BrokerStatus, BrokerUpEvent } from './broker-pool-stats.js'

/**
 * Client-side balancing and failover over several MQTT brokers, as the
 * kernel's transport. At start it checks whether the brokers share messages
 * and runs in `failover` mode (one connection, moved to the next healthy
 * broker when lost) on a cluster or `all` mode (a connection to every broker,
 * every route subscribed on each) on independent brokers. Sessions are
 * persistent: a session whose instance went away is adopted by another
 * instance of the group, and a graceful stop hands the instance's share back.
 * Brokers are checked by probes of their own (CONNECT/CONNACK); what a
 * broker reports dropping is a metric, a log and a failing check.
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
  readonly #live = new LiveConnections()
  readonly #holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly #sync: SubscriptionSync
  readonly #probes: ProbeScheduler
  readonly #sender: PublishSender
  readonly #ackWatch: AckWatch
  readonly #steward: SessionSteward
  readonly #drops: BrokerDropWatch
  readonly #links: BrokerLinks
  readonly #wake = new WakeSignal()
  readonly #topics: ControlTopics
  readonly #failover: TypedEvent<FailoverEvent>
  readonly #brokerDown: TypedEvent<BrokerDownEvent>
  readonly #brokerUp: TypedEvent<BrokerUpEvent>
  readonly #allDown: TypedEvent<AllDownEvent>
  readonly #activeChanged: TypedEvent<ActiveBrokerEvent>
  readonly #ready = new TypedEvent<boolean>()
  readonly #counts = { failovers: 0, probes: 0, probeFailures: 0 }
  readonly #topology: TopologyGuard
  #supervisor: FailoverSupervisor | undefined
  #receiver: MessageReceiver | undefined
  #state: 'created' | 'running' | 'handing-back' | 'closed' = 'created'
  #announcedAllDown = false
  /** Each broker's last connect or probe failure, for the error a start that found none gives. */
  readonly #lastErrors = new Map<string, unknown>()

  constructor(options: BrokerPoolOptions) {
    const o = (this.#options = resolveBrokerPoolOptions(options, `routemq-${hostname()}-${process.pid}`))
    const log = (this.#log = safeLogger(options.logger ?? silentLogger))
    const onListenerError = (error: unknown): void => log.error('a broker pool event listener threw', { error })
    const set = (this.#set = new BackendSet(
      o.brokers.map((endpoint) => ({ id: endpoint.id, target: endpoint, weight: endpoint.weight, region: endpoint.region })),
      {
        strategy: createStrategy(o.strategy),
        health: { rise: o.health.rise, fall: o.health.fall },
        ejection: { baseMs: o.health.backoffBaseMs * 4, maxMs: o.health.backoffCapMs },
        onListenerError,
      },
    ))
    this.#failover = new TypedEvent(onListenerError)
    this.#brokerDown = new TypedEvent(onListenerError)
    this.#brokerUp = new TypedEvent(onListenerError)
    this.#allDown = new TypedEvent(onListenerError)
    this.#activeChanged = new TypedEvent(onListenerError)
    const tracing = new BrokerPoolTracing()
    this.#failover.on((event) => tracing.failover(event))
    this.#brokerDown.on(({ broker }) => tracing.down(broker))
    this.#brokerUp.on(({ broker }) => tracing.up(broker))
    this.#topics = new ControlTopics(o.controlTopic, o.group)
    this.#topology = new TopologyGuard(o, log, this.#topics.canary)
    this.#holdDown = new HoldDown(Math.max(1000, o.health.publishAckTimeoutMs), o.health.backoffCapMs, log)
    this.#sync = new SubscriptionSync(o.protocolVersion)
    this.#drops = new BrokerDropWatch(log, 60_000, onListenerError)
    this.#probes = new ProbeScheduler({
      set, options: o, log,
      onProbe: (backend, error) => {
        this.#counts.probes++
        if (error === undefined) this.#supervisor?.considerFailBack()
        else {
          this.#counts.probeFailures++
          this.#lastErrors.set(backend.id, error)
        }
      },
    })
    this.#sender = new PublishSender({
      options: o, set, live: this.#live, holdDown: this.#holdDown, log, onListenerError,
      mode: () => this.#mode ?? 'failover',
      onTimelyAck: (backend) => {
        this.#ackWatch.clear(backend)
        this.#holdDown.forgive(backend)
      },
    })
    this.#ackWatch = new AckWatch({
      queue: this.#sender.queue, live: this.#live, set, holdDown: this.#holdDown, log,
      publishAckTimeoutMs: o.health.publishAckTimeoutMs, fall: o.health.fall,
    })
    this.#steward = new SessionSteward({
      options: o, log, topics: this.#topics, sync: this.#sync,
      receiver: () => this.#receiver,
      ownSessions: () => new Set(this.#set.backends.map((backend) => this.#links.sessionId(backend))),
      sessionOn: (brokerId) => {
        const backend = this.#set.backends.find((b) => b.id === brokerId)
        return backend && this.#links.sessionId(backend)
      },
      adoptionEndpoint: (brokerId) => this.#mode === 'all'
        ? this.#set.backends.find((b) => b.id === brokerId && b.state !== 'unhealthy')?.target
        : this.#supervisor?.active?.target,
      perBroker: () => this.#mode === 'all',
      serving: () => this.#state === 'running',
      sharedSubscriptions: () => this.#topology.sharedSubscriptions,
      onListenerError,
    })
    this.#links = new BrokerLinks({
      options: o, set, log, live: this.#live, sync: this.#sync, probes: this.#probes, holdDown: this.#holdDown,
      sender: this.#sender, ackWatch: this.#ackWatch, steward: this.#steward, drops: this.#drops,
      mode: () => this.#mode ?? 'failover',
      cluster: () => this.#topology.verdict === 'cluster',
      receiver: () => this.#receiver,
      running: () => this.#state === 'running' || this.#state === 'handing-back',
      routes: () => this.#state === 'running',
      recordError: (brokerId, error) => this.#lastErrors.set(brokerId, error),
    })
    set.onStateChange((change) => this.#onStateChange(change))
  }

  /** True while at least one broker connection takes publishes. */
  get connected(): boolean {
    return this.#live.size > 0
  }

  /** The mode the pool runs in, once the topology was checked at connect. */
  get #mode(): EffectiveBrokerPoolMode | undefined {
    return this.#topology.mode
  }

  get persistentSession(): boolean {
    return !this.#options.clean
  }

  /** The resolved options (passwords included: do not log them). */
  get options(): ResolvedBrokerPoolOptions {
    return this.#options
  }

  get stats(): BrokerPoolStats {
    const sender = this.#sender.counts
    return Object.freeze({
      mode: this.#mode,
      topology: this.#topology.verdict,
      active: this.#mode === 'failover' ? this.#supervisor?.active?.id : undefined,
      brokers: this.#set.backends.map((backend) => ({
        id: backend.id,
        state: backend.state,
        connected: this.#live.has(backend),
        latencyMs: backend.latencyMs,
        outstanding: backend.outstanding,
        region: backend.region,
        dropped: this.#drops.dropped(backend.id),
      })),
      failovers: this.#counts.failovers,
      published: sender.published,
      acknowledged: sender.acknowledged,
      resent: sender.resent,
      buffered: this.#sender.queue.size,
      bufferedBytes: this.#sender.queue.bytes,
      droppedQos0: sender.droppedQos0,
      rejectedBufferFull: sender.rejectedBufferFull,
      qos2Interrupted: sender.qos2Interrupted,
      ackTimeouts: this.#ackWatch.timeouts,
      abandoned: sender.abandoned,
      probes: this.#counts.probes,
      probeFailures: this.#counts.probeFailures,
      sessions: { ...this.#steward.counts },
      sessionsLost: this.#links.sessionsLost,
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

  /** Each session of a departed instance of the group this pool drained and ended. */
  onSessionAdopted(listener: (event: SessionAdoptedEvent) => void): Disposer {
    return this.#steward.onAdopted(listener)
  }

  /** Each publish as a broker acknowledged it (QoS 0: wrote it) or its connection failed under it, for metrics. */
  onRequest(listener: (request: RequestObserved) => void): Disposer {
    return this.#sender.onRequest(listener)
  }

  /** Brokers up or down, what they dropped, failovers and the offline buffer, for metrics. */
  metricsSnapshot(): PoolMetricsSnapshot {
    return {
      backends: this.#set.backends.map((backend) => ({ id: backend.id, up: backend.state === 'healthy', dropped: this.#drops.dropped(backend.id) })),
      failovers: this.#counts.failovers,
      offlineBuffer: { messages: this.#sender.queue.size, bytes: this.#sender.queue.bytes },
      sessionsAdopted: this.#steward.counts.adopted,
    }
  }

  /**
   * One non-critical check per broker, `broker/<id>` (see
   * `brokerHealthChecks`), run again at once whenever a broker goes down or
   * up or starts dropping messages. Readiness needs the transport connected,
   * which is the pool as a whole.
   */
  healthChecks(): readonly HealthCheckDefinition[] {
    return brokerHealthChecks({
      backends: this.#set.backends, holdDown: this.#holdDown, drops: this.#drops, topology: this.#topology,
      intervalMs: this.#options.health.probeIntervalMs,
      watch: (recheck) => {
        const offs = [this.#brokerDown.on(recheck), this.#brokerUp.on(recheck), this.#drops.onDrops(recheck)]
        return () => offs.forEach((off) => off())
      },
    })
  }

  async connect(receiver: MessageReceiver): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('connect')
    if (this.#state !== 'created') throw new ApplicationStateError('This broker pool is already connected; a pool serves one application.')
    this.#receiver = receiver
    this.#state = 'running'
    try {
      await verifyDeferredAcks()
      await this.#topology.choose()
    } catch (error) {
      await this.close()
      throw error
    }
    if (this.#state !== 'running') throw new TransportClosedError('connect')
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
    this.#probes.start()
    this.#ackWatch.start()
    const common = { options: this.#options, set: this.#set, log: this.#log, links: this.#links, holdDown: this.#holdDown, wake: this.#wake }
    const running = (): boolean => this.#state === 'running' || this.#state === 'handing-back'
    const connected = (): void => {
      this.#announcedAllDown = false
      if (this.#startedEnough()) this.#ready.emit(true)
    }
    const offDown = this.#brokerDown.on(() => {
      if (this.#live.size > 0 && this.#startedEnough()) this.#ready.emit(true)
    })
    void ready.finally(offDown)
    if (this.#mode === 'failover') {
      this.#supervisor = new FailoverSupervisor({
        ...common, live: this.#live, running, connected,
        mayFailBack: () => this.#state === 'running',
        replaying: () => this.#sender.queue.pendingCount,
        failover: this.#failover,
        activeChanged: this.#activeChanged,
        countFailover: () => this.#counts.failovers++,
        allDown: () => this.#announceAllDown(),
      })
      this.#guard(this.#supervisor.run(), 'failover loop')
    } else {
      this.#guard(new AllBrokersSupervisor({ ...common, running, connected }).run(), 'connection loops')
    }
    if (await ready) return
    // close() may have run while we waited.
    if (this.#state !== 'running') throw new TransportClosedError('connect')
    const tried = this.#set.backends.map((backend) => ({ broker: backend.id, error: this.#lastErrors.get(backend.id) }))
    await this.close()
    throw new ConnectionFailedError(`any of ${tried.map((t) => t.broker).join(', ')}`, tried.find((t) => t.error !== undefined)?.error ?? 'no broker answered', {
      tried,
      fix: `no broker connected within mqtt.startTimeoutMs (${this.#options.startTimeoutMs} ms; ROUTEMQ_MQTT_START_TIMEOUT_MS shortens or lengthens it)`,
    })
  }

  async subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('subscribe')
    this.#topology.assertSharedSubscriptions(subscriptions)
    this.#sync.add(subscriptions)
    await this.#syncAll()
    this.#steward.routesKnown()
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    if (this.#state === 'closed') throw new TransportClosedError('unsubscribe')
    this.#sync.remove(topics)
    await this.#syncAll()
  }

  /** Brings every connection, those being set up included, in line with the routes. */
  async #syncAll(): Promise<void> {
    await Promise.all([...this.#live.connections(), ...this.#links.establishing.values()].map((connection) => this.#sync.sync(connection)))
  }

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new TransportClosedError('publish'))
    // A broker drops the connection over a bad topic or property; resending it would drop every broker in turn.
    try {
      assertPublishable(topic, payload, options)
    } catch (error) {
      return Promise.reject(error)
    }
    const body = typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    return this.#sender.publish(topic, body, options)
  }

  /**
   * Application.stop(): each session hands its share back (when another
   * instance is online to take it) or is kept for the next instance; no new
   * connection subscribes the routes from now on.
   */
  async handBack(): Promise<void> {
    if (this.#state !== 'running') return
    this.#state = 'handing-back'
    await Promise.all([...this.#live.entries()].map(([backend, connection]) =>
      // The drain marker needs its subscription, which a connection made a moment ago may still be setting up.
      this.#links.controlReady(connection).then(() => this.#steward.handBack(connection, backend.id)).catch((error: unknown) => {
        this.#log.warn('handing a session back failed; it is kept for another instance', { broker: backend.id, error })
      }),
    ))
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    this.#ready.emit(false)
    this.#ackWatch.stop()
    this.#wake.wake()
    await this.#steward.stop()
    const live = [...this.#live.entries()]
    this.#live.clear()
    const grace = this.#options.closeTimeoutMs
    await Promise.all([
      ...live.map(([, connection]) => this.#steward.finish(connection, grace)),
      ...[...this.#links.retiring].map((connection) => connection.close(grace)),
      ...[...this.#links.establishing.values()].map((connection) => connection.close(0)),
      this.#probes.stop(),
    ])
    this.#links.flushLogs()
    this.#sender.flushLogs()
    this.#sender.rejectAll(() => new TransportClosedError('complete this publish, which no broker acknowledged'))
  }

  /**
   * Whether `connect()` may resolve: a connection takes publishes and, in all
   * mode, every broker is connected or known to be down, so that the
   * application subscribes everywhere before it says it started.
   */
  #startedEnough(): boolean {
    if (this.#live.size === 0) return false
    if (this.#mode !== 'all') return true
    return this.#set.backends.every((b) => this.#live.has(b) || b.state === 'unhealthy' || this.#holdDown.isHeld(b))
  }

  #onStateChange({ backend, from, to }: BackendStateChange<BrokerEndpoint>): void {
    if (to === 'unhealthy') {
      this.#log.warn('broker down', { broker: backend.id })
      this.#brokerDown.emit({ broker: backend.id })
      const connection = this.#live.get(backend) ?? this.#links.establishing.get(backend)
      if (connection) {
        this.#supervisor?.losing(backend)
        void connection.close(0)
      }
      if (this.#set.available().length === 0) this.#announceAllDown()
      this.#probes.wentDown(backend)
    } else if (to === 'healthy') {
      this.#log.info('broker up', { broker: backend.id })
      this.#brokerUp.emit({ broker: backend.id })
      this.#wake.wake()
      this.#sender.flush()
      this.#supervisor?.considerFailBack()
      if (from === 'unhealthy') this.#guard(this.#recheck(backend), `topology check of ${backend.id}`)
    }
  }

  /** A broker came back: does it still share messages with the others as the mode assumes? */
  async #recheck(backend: Backend<BrokerEndpoint>): Promise<void> {
    const other = this.#set.backends.find((b) => b !== backend && b.state === 'healthy')
    if (!other || this.#state !== 'running') return
    if (await this.#topology.recheck(backend, other)) this.#brokerDown.emit({ broker: backend.id })
  }

  #announceAllDown(): void {
    if (this.#announcedAllDown) return
    this.#announcedAllDown = true
    this.#log.error('every broker is down; retrying', { brokers: this.#set.backends.map((b) => b.id) })
    this.#allDown.emit({ brokers: this.#set.backends.map((b) => b.id) })
  }

  /** A background loop must never become an unhandled rejection; if one dies, say so loudly. */
  #guard(loop: Promise<void>, name: string): void {
    loop.catch((error: unknown) => this.#log.error(`broker pool ${name} stopped unexpectedly`, { error }))
  }
}
