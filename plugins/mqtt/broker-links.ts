import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import { isSubscriptionRejectedError } from '../../src/routemq/plugin-api.js'
import { TransportClosedError } from '../../src/routemq/plugin-api.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { InboundMessage, MessageReceiver } from '../../src/routemq/plugin-api.js'
import { isUnreachableError } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { SummarisedWarning } from '../../src/routemq/plugin-api.js'
import type { AckWatch } from './ack-watch.js'
import { BrokerConnection, sessionOptions } from './broker-connection.js'
import { MOSQUITTO_DROPPED_TOPIC, type BrokerDropWatch } from './broker-drop-watch.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { EffectiveBrokerPoolMode, ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import type { HoldDown } from './hold-down.js'
import type { LiveConnections } from './live-connections.js'
import type { ProbeScheduler } from './probe-scheduler.js'
import type { PublishSender } from './publish-sender.js'
import type { SessionSteward } from './session-steward.js'
import type { SubscriptionSync } from './subscription-sync.js'

/** Options of `BrokerLinks`: the pool's parts a connection is wired to. */
export interface BrokerLinksOptions {
  readonly options: ResolvedBrokerPoolOptions
  readonly set: BackendSet<BrokerEndpoint>
  readonly log: Logger
  readonly live: LiveConnections
  readonly sync: SubscriptionSync
  readonly probes: ProbeScheduler
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly sender: PublishSender
  readonly ackWatch: AckWatch
  readonly steward: SessionSteward
  readonly drops: BrokerDropWatch
  readonly mode: () => EffectiveBrokerPoolMode
  /** The topology check found a cluster: a session is the same on every broker. */
  readonly cluster: () => boolean
  /** The application's receiver. */
  readonly receiver: () => MessageReceiver | undefined
  readonly running: () => boolean
  /** False once the pool is handing its share back: new connections no longer subscribe the routes. */
  readonly routes: () => boolean
  /** Remembers why connecting failed, for the error `connect()` gives when no broker takes it. */
  readonly recordError: (brokerId: string, error: unknown) => void
}

/**
 * Makes and ends the pool's connections: opens one to a broker with the
 * session's client id and will, subscribes the routes and the pool's own
 * control topics, announces the session, and routes what arrives (control
 * messages and broker statistics to the pool's parts, the rest to the
 * application). A connection takes publishes once `activate`d; `deactivate`
 * takes back what it had in flight.
 *
 * @example
 * const connection = await links.establish(backend)
 * if (connection) { links.activate(backend, connection); await lost; links.deactivate(backend, connection) }
 */
export class BrokerLinks {
  /** Connections being set up (CONNACK received, subscriptions not yet settled). */
  readonly establishing = new Map<Backend<BrokerEndpoint>, BrokerConnection>()
  /** Connections handing over: no longer taking traffic, not yet closed. */
  readonly retiring = new Set<BrokerConnection>()
  readonly #o: BrokerLinksOptions
  /** Brokers that held a persistent session of this pool, and those seen to lose it. */
  readonly #hadSession = new Set<Backend<BrokerEndpoint>>()
  /** Per connection, the set-up of the pool's own subscriptions and presence (after it took traffic). */
  readonly #control = new WeakMap<BrokerConnection, Promise<void>>()
  /** Connections that resumed a session this pool had on their broker before. */
  readonly #resumed = new WeakSet<BrokerConnection>()
  #sessionsLost = 0
  /** Per broker: one that accepts TCP but refuses the session is tried again and again; one line per episode. */
  readonly #connectFailed: SummarisedWarning

  constructor(options: BrokerLinksOptions) {
    this.#o = options
    this.#connectFailed = new SummarisedWarning(options.log, 'could not connect to broker')
  }

  /** Times a broker came back without this pool's persistent session (restarted without persistence, or it expired). */
  get sessionsLost(): number {
    return this.#sessionsLost
  }

  /**
   * A live connection was lost (not closed by the pool): the broker is down
   * until probes say otherwise, and probed fast. A session taken over by
   * another connection says nothing of the broker: after a pause (two
   * instances with one client id would take it from each other in a loop),
   * the caller connects again.
   */
  async lost(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    if (connection.takenOver) {
      this.#o.log.warn('another connection took this session over (an instance adopting it, or one more instance with this client id); connecting again', { broker: backend.id, session: connection.clientId })
      await new Promise((resolve) => setTimeout(resolve, TAKEOVER_PAUSE_MS))
      return
    }
    this.#o.set.markDown(backend)
    this.#o.probes.lost(backend)
  }

  /** The session's client id on `backend`: the pool's own in failover mode, `<clientId>-<n>` per broker in all mode. */
  /** Reports what the summarised connect failures counted and not yet said (on close). */
  flushLogs(): void {
    this.#connectFailed.endAll()
  }

  sessionId(backend: Backend<BrokerEndpoint>): string {
    return this.#o.mode() === 'all' ? `${this.#o.options.clientId}-${backend.index + 1}` : this.#o.options.clientId
  }

  /** Connects to `backend` and subscribes the routes; `undefined` (and the broker reported) on failure. */
  async establish(backend: Backend<BrokerEndpoint>): Promise<BrokerConnection | undefined> {
    const { options, log, set, sync, steward } = this.#o
    const sessionId = this.sessionId(backend)
    let connection: BrokerConnection | undefined
    try {
      connection = await BrokerConnection.open({
        ...sessionOptions(options, backend.target, sessionId, log, steward.will(sessionId)),
        receiver: this.#receiverFor(backend),
      })
      this.establishing.set(backend, connection)
      if (!this.#o.running()) throw new TransportClosedError('connect')
      this.#noteSession(backend, connection)
      const opened = connection
      // Only the routes before the connection takes traffic: they are what devices publishing to this broker need.
      // The pool's own subscriptions and its presence follow (activate): answers a broker writes back to back wait
      // for the client's delayed ACK (40 ms) when the broker has no TCP_NODELAY (Mosquitto's default), which would
      // lengthen every failover. A SUBACK may be slow on a cluster that creates a durable consumer per subscription
      // (NATS: up to a second or so), unlike a CONNACK.
      if (this.#o.routes()) {
        await raceTimeout(sync.sync(opened), subscribeTimeoutMs(options), () => {
          throw new Error(`no SUBACK within ${subscribeTimeoutMs(options)} ms`)
        })
      }
      // A probe may have taken the broker out while this was being set up.
      if (!this.#o.running() || !connection.open || !backend.isAvailable(Date.now())) {
        await connection.close(0)
        return undefined
      }
      set.reportSuccess(backend, connection.connectMs)
      this.#o.probes.observeRoundTrip(backend, connection.connectMs)
      this.#connectFailed.end(backend.id)
      return connection
    } catch (error) {
      await connection?.close(0)
      if (!this.#o.running()) return undefined
      this.#o.recordError(backend.id, error)
      this.#connectFailed.record({ broker: backend.id, error }, backend.id)
      // A refused subscription is the configuration's fault, not the broker's health.
      if (isSubscriptionRejectedError(error)) {
        this.#o.holdDown.hold(backend, 'it refused a subscription')
        return undefined
      }
      if (isUnreachableError(error)) set.markDown(backend)
      else set.reportFailure(backend, { eject: true })
      return undefined
    } finally {
      if (connection && this.establishing.get(backend) === connection) this.establishing.delete(backend)
    }
  }

  /** A broker that held our session and no longer does lost it: what devices published there before we resubscribed had no subscriber. */
  #noteSession(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    const { options, log } = this.#o
    if (options.clean) return
    // Every node of a cluster holds the one session; independent brokers hold one each.
    const key = this.#o.cluster() ? this.#o.set.backends[0]! : backend
    if (!connection.sessionPresent && this.#hadSession.has(key)) {
      this.#sessionsLost++
      log.error('a broker came back without this instance\'s session: it keeps no sessions across restarts, or the session expired. ' +
        'Messages devices published to it before the app subscribed again had no subscriber; give Mosquitto "persistence true" (see "Mosquitto settings" in the README)',
      { broker: backend.id, session: connection.clientId })
    }
    if (connection.sessionPresent && this.#hadSession.has(key)) this.#resumed.add(connection)
    this.#hadSession.add(key)
  }

  /**
   * A resumed session should still hold its shared subscriptions: the ready
   * topic's, subscribed on `$share/` like the routes, tells. Mosquitto 2.0.11
   * keeps a session across a restart with persistence, but not its `$share/`
   * subscriptions, so what devices published to the shared routes before the
   * pool subscribed again had no subscriber.
   */
  async #checkSharedSubscriptions(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    if (!this.#resumed.has(connection) || !this.#o.steward.sharesReady()) return
    if ((await connection.hasSubscriber(this.#o.steward.readyTopic)) !== false) return
    this.#sessionsLost++
    this.#o.log.error('a broker kept this instance\'s session across a restart but not its shared subscriptions ($share/...), as Mosquitto 2.0.11 does: ' +
      'what devices published to the shared routes before the app subscribed again had no subscriber. Use a broker that restores them, or drain it in the balancer before restarting it',
    { broker: backend.id, session: connection.clientId })
  }

  /** The connection takes publishes from now on; what waited is sent; the pool's own subscriptions and presence follow. */
  activate(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    this.#o.live.add(backend, connection)
    const control = this.#checkSharedSubscriptions(backend, connection).then(() => this.#setUpControl(connection)).catch((error: unknown) => {
      if (connection.open) this.#o.log.warn('could not subscribe the pool\'s control topics on a broker', { broker: backend.id, error })
    })
    this.#control.set(connection, control)
    // Routes subscribed while this connection was being set up.
    if (this.#o.routes()) {
      this.#o.sync.sync(connection).catch((error: unknown) => this.#o.log.warn('could not subscribe the routes on a broker', { broker: backend.id, error }))
    }
    this.#o.ackWatch.clear(backend)
    this.#o.sender.flush()
  }

  /** The connection is gone or handed over: what it had in flight is taken back and sent elsewhere. */
  deactivate(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    this.#o.live.delete(backend, connection)
    this.#o.sender.takeBack(backend, connection)
    this.#o.sender.flush()
  }

  /** Resolves once the pool's own subscriptions and presence are set up on `connection` (or failed to be). */
  controlReady(connection: BrokerConnection): Promise<void> {
    return this.#control.get(connection) ?? Promise.resolve()
  }

  /** The pool's own subscriptions on a session, then its presence (for the other instances, not for traffic). */
  async #setUpControl(connection: BrokerConnection): Promise<void> {
    const { options, steward, log, sync } = this.#o
    await connection.subscribe(steward.subscriptions(connection.clientId), options.protocolVersion)
    if (!options.clean) {
      // Online only once the routes are held here: a peer that stops hands its share back to the instances online.
      void (async () => {
        await sync.whenKnown()
        await sync.sync(connection)
        if (connection.open && this.#o.routes()) await steward.attach(connection)
      })().catch((error: unknown) => log.debug('could not announce the session', { broker: connection.endpoint.id, error }))
    }
    if (options.watchBrokerDrops && connection.open) {
      // On its own: a broker whose access rules refuse $SYS (or that has none) must not cost the pool its presence.
      await connection.subscribe([{ topic: MOSQUITTO_DROPPED_TOPIC, qos: 0 }], options.protocolVersion).catch((error: unknown) => {
        log.debug('the broker refused its drop counter; drops there go unseen', { broker: connection.endpoint.id, error })
      })
    }
  }

  /** What a connection to `backend` receives: control topics and broker statistics here, the rest to the application. */
  #receiverFor(backend: Backend<BrokerEndpoint>): MessageReceiver {
    const { steward, drops, live } = this.#o
    return (message: InboundMessage) => {
      if (message.topic === MOSQUITTO_DROPPED_TOPIC) {
        message.settle(true)
        drops.sample(backend.id, message.payload)
      } else if (steward.owns(message.topic)) {
        steward.handle(message, backend.id, live.get(backend) ?? this.establishing.get(backend))
      } else {
        const receiver = this.#o.receiver()
        if (receiver) receiver(message)
        else message.settle(false)
      }
    }
  }
}

/** How long the pool waits before taking back a session another connection took over. */
const TAKEOVER_PAUSE_MS = 1000

/** How long subscribing on a new connection may take: longer than a CONNACK on a cluster that creates consumers. */
function subscribeTimeoutMs(options: ResolvedBrokerPoolOptions): number {
  return Math.max(options.connectTimeoutMs, 10_000)
}
