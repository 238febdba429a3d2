import { randomBytes } from 'node:crypto'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { InboundMessage, MessageReceiver, Subscription } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { sessionOptions, type BrokerConnection, type WillMessage } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { ADOPTION_STANDBY_MS, type ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { MOSQUITTO_DROPPED_TOPIC } from './broker-drop-watch.js'
import { parsePresence, presence, type ControlTopics, type MemberState } from './control-topics.js'
import { adoptSession, type AdoptionOutcome } from './session-adoption.js'
import type { SubscriptionSync } from './subscription-sync.js'

/** Options of `SessionSteward`. */
export interface SessionStewardOptions {
  readonly options: ResolvedBrokerPoolOptions
  readonly log: Logger
  readonly topics: ControlTopics
  readonly sync: SubscriptionSync
  /** The application's receiver, once connected. */
  readonly receiver: () => MessageReceiver | undefined
  /** Client ids of the pool's own live sessions. */
  readonly ownSessions: () => ReadonlySet<string>
  /** The client id of the pool's own session on broker `brokerId`. */
  readonly sessionOn: (brokerId: string) => string | undefined
  /** Where to adopt a session seen on broker `brokerId` (all mode: that broker; failover mode: the active one). */
  readonly adoptionEndpoint: (brokerId: string) => BrokerEndpoint | undefined
  /** Failover mode: a session is the same on every node, so adoptions are not per broker. */
  readonly perBroker: () => boolean
  /** Whether the brokers deliver through `$share/` subscriptions (the topology check saw it, or did not run). */
  readonly sharedSubscriptions: () => boolean
  /** False while the pool is not running or is stopping: nothing is adopted then. */
  readonly serving: () => boolean
  readonly onListenerError: (error: unknown) => void
}

/** A session of a departed instance was drained and ended. */
export interface SessionAdoptedEvent {
  readonly broker: string
  /** Its client id. */
  readonly session: string
}

/** Counters of the sessions the steward dealt with. */
export interface SessionCounts {
  /** Sessions of departed instances drained and ended. */
  adopted: number
  /** Adoptions that found no session left, or were interrupted (the owner came back). */
  adoptionsSkipped: number
  /** Sessions of this instance handed back at a graceful stop (subscriptions dropped, backlog handled, session ended). */
  handedBack: number
  /** Sessions of this instance kept at a graceful stop because no other instance was there to take the share. */
  kept: number
}

interface Adoption {
  readonly scope: string
  readonly sessionId: string
  readonly brokerId: string
  timer: NodeJS.Timeout | undefined
  running: Promise<void> | undefined
  attempts: number
}

const BARRIER_TIMEOUT_MS = 30_000
const ADOPTION_JITTER_MS = 500
const RETRY_MS = 5000
const RETRY_CAP_MS = 300_000

/**
 * Keeps app instances from stranding what brokers hold for them. Every
 * session announces itself (`members/<id>`, retained) and leaves a will that
 * marks it `orphaned` after `orphanAfterSeconds` (MQTT 5's will delay) if it
 * goes away without a DISCONNECT. Instances of the group adopt orphaned
 * sessions (see `adoptSession`). At a graceful stop a session hands its share
 * back when another instance is online (unsubscribe, take the backlog, end
 * the session); alone, it keeps the session, marked `left`, for the next
 * instance, so that nothing the broker takes meanwhile has nowhere to go.
 *
 * @example
 * const steward = new SessionSteward({ options, log, topics, sync, receiver, ownSessions, adoptionEndpoint, perBroker, serving })
 * await steward.attach(connection)         // after the routes are subscribed
 * steward.handle(message, broker)          // control messages
 * await steward.handBack(connection, broker) // Application.stop()
 */
export class SessionSteward {
  readonly counts: SessionCounts = { adopted: 0, adoptionsSkipped: 0, handedBack: 0, kept: 0 }
  readonly #o: SessionStewardOptions
  readonly #members = new Map<string, Map<string, MemberState>>()
  readonly #adoptions = new Map<string, Adoption>()
  readonly #barriers = new Map<string, () => void>()
  readonly #outcomes = new WeakMap<BrokerConnection, 'handed-back' | 'kept'>()
  readonly #ignored = new Set<string>()
  readonly #abort = new AbortController()
  readonly #adopted: TypedEvent<SessionAdoptedEvent>
  #stopped = false

  constructor(options: SessionStewardOptions) {
    this.#o = options
    this.#adopted = new TypedEvent(options.onListenerError)
  }

  /** Each session of a departed instance this steward drained and ended. */
  onAdopted(listener: (event: SessionAdoptedEvent) => void): Disposer {
    return this.#adopted.on(listener)
  }

  get #persistent(): boolean {
    return !this.#o.options.clean
  }

  /** The will of a session: its presence turns `orphaned` once it has been gone for `orphanAfterSeconds`. */
  will(sessionId: string): WillMessage | undefined {
    if (!this.#persistent) return undefined
    return { topic: this.#o.topics.member(sessionId), payload: presence('orphaned'), retain: true, delaySeconds: this.#o.options.sessions.orphanAfterSeconds }
  }

  /** The pool's control subscriptions for a session: its drain marker, the balancers' ready topic, and with persistent sessions the group's presence messages. */
  subscriptions(sessionId: string): Subscription[] {
    // QoS 0: an offline session does not queue the balancer's checks. On `$share/` like the routes: a broker that
    // lost its shared subscriptions (Mosquitto 2.0.11 restarted, even with persistence) then fails the balancer's
    // check until the pool has subscribed again.
    const ready = this.sharesReady() ? `$share/${this.#o.options.group}/${this.#o.topics.ready}` : this.#o.topics.ready
    const own: Subscription[] = [{ topic: this.#o.topics.barrier(sessionId), qos: 1 }, { topic: ready, qos: 0 }]
    return this.#persistent ? [{ topic: this.#o.topics.members, qos: 1 }, ...own] : own
  }

  /** The balancers' check publishes here; every session of the group subscribes to it. */
  get readyTopic(): string {
    return this.#o.topics.ready
  }

  /** Whether the ready topic is subscribed on `$share/`: under MQTT 5, on brokers that deliver through shared subscriptions. */
  sharesReady(): boolean {
    return this.#o.options.protocolVersion === 5 && this.#o.sharedSubscriptions()
  }

  /** Announces a connected session (its routes subscribed): retained `online`, which also cancels its adoption anywhere. */
  async attach(connection: BrokerConnection): Promise<void> {
    await connection.publishNow(this.#o.topics.member(connection.clientId), presence('online'), { qos: 1, retain: true })
  }

  /** Whether `topic` is a control topic of this group (handled here, never by the application). */
  owns(topic: string): boolean {
    return this.#o.topics.owns(topic)
  }

  /** Takes a control message delivered by broker `brokerId` on `connection` (the one it came on, when known). */
  handle(message: InboundMessage, brokerId: string, connection: BrokerConnection | undefined): void {
    message.settle(true)
    const { topics } = this.#o
    const barrierOf = topics.barrierOf(message.topic)
    if (barrierOf !== undefined) {
      this.#barriers.get(`${barrierOf}:${message.payload.toString()}`)?.()
      return
    }
    const sessionId = topics.memberOf(message.topic)
    if (sessionId === undefined) return
    const state = parsePresence(message.payload)
    let members = this.#members.get(brokerId)
    if (!members) this.#members.set(brokerId, (members = new Map<string, MemberState>()))
    if (state === undefined) members.delete(sessionId)
    else members.set(sessionId, state)
    if (this.#o.ownSessions().has(sessionId)) {
      // Our own session marked gone (a will published when the broker restarted): say it is here, so no one adopts it.
      if ((state === 'orphaned' || state === 'left') && this.#o.serving() && connection?.open && connection.clientId === sessionId) {
        void this.attach(connection).catch(() => undefined)
      }
      return
    }
    this.#consider(brokerId, sessionId, state)
  }

  /** The routes became known (adoption waits for them, to tell this app's messages from another's). */
  routesKnown(): void {
    for (const adoption of this.#adoptions.values()) if (!adoption.timer && !adoption.running) this.#schedule(adoption, 0)
  }

  /**
   * Application.stop(), for one connection: with another instance online,
   * unsubscribes the routes and lets the backlog arrive and settle (the
   * session is ended at `finish`); alone, marks the session `left` and keeps
   * it, so that the broker goes on keeping what arrives for the next instance.
   */
  async handBack(connection: BrokerConnection, brokerId: string): Promise<void> {
    void this.stop()
    if (this.#persistent) {
      await connection.publishNow(this.#o.topics.member(connection.clientId), presence('stopping'), { qos: 1, retain: true })
      // Every presence message published before ours has arrived once our marker does.
      await this.#barrier(connection)
      const own = this.#o.ownSessions()
      const peers = [...(this.#members.get(brokerId) ?? new Map<string, MemberState>())].filter(([id, state]) => state === 'online' && !own.has(id))
      if (peers.length === 0) {
        await this.#keep(connection, brokerId, 'no other instance is online')
        return
      }
      // On a cluster the presence messages' order is one node's; two instances stopping together could each see the
      // other online. A kept session loses nothing: a peer adopts it at once.
      if (!this.#o.perBroker()) {
        await this.#keep(connection, brokerId, 'the brokers are a cluster, so a peer adopts it')
        return
      }
    }
    await this.#o.sync.release(connection)
    await this.#barrier(connection)
    await connection.inboundSettled()
    if (connection.withheld > 0) {
      // The session owes them to whoever connects with it next (a 'redeliver' policy, a refused message): keep it.
      await this.#keep(connection, brokerId, `${connection.withheld} messages it delivered are unacknowledged`)
      return
    }
    this.#outcomes.set(connection, 'handed-back')
  }

  /** Keeps a session at a stop, marked `left` for the next instance (or its adoption). */
  async #keep(connection: BrokerConnection, brokerId: string, why: string): Promise<void> {
    await connection.publishNow(this.#o.topics.member(connection.clientId), presence('left'), { qos: 1, retain: true })
    this.#outcomes.set(connection, 'kept')
    this.counts.kept++
    this.#o.log.info(`keeping the session for the next instance: ${why}`, { broker: brokerId, session: connection.clientId })
  }

  /**
   * Closes a session's connection at the pool's close: a handed-back session
   * is ended and its presence cleared; any other persistent session is kept,
   * marked `left` for the next instance.
   */
  async finish(connection: BrokerConnection, graceMs: number): Promise<void> {
    const owes = connection.withheld > 0
    const outcome = this.#outcomes.get(connection)
    if (outcome === 'handed-back' && this.#persistent && connection.open && !owes) {
      const cleared = await raceTimeout(
        connection.publishNow(this.#o.topics.member(connection.clientId), '', { qos: 1, retain: true }).then(() => true, () => false), graceMs, () => false,
      )
      if (cleared) {
        this.counts.handedBack++
        await connection.close(graceMs, { endSession: true })
        return
      }
    } else if ((outcome === undefined || owes) && this.#persistent && connection.open) {
      await raceTimeout(connection.publishNow(this.#o.topics.member(connection.clientId), presence('left'), { qos: 1, retain: true }).catch(() => undefined), graceMs, () => undefined)
    }
    await connection.close(graceMs)
  }

  /** Stops adopting: adoptions under way are cut short (their sessions stay for another instance) and awaited. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#abort.abort()
    for (const adoption of this.#adoptions.values()) clearTimeout(adoption.timer)
    await Promise.all([...this.#adoptions.values()].map((adoption) => adoption.running ?? Promise.resolve()))
  }

  /** Publishes a marker to the session itself and waits until it arrives: everything queued before it has too. */
  async #barrier(connection: BrokerConnection): Promise<void> {
    const nonce = randomBytes(8).toString('hex')
    const key = `${connection.clientId}:${nonce}`
    const seen = new Promise<void>((resolve) => this.#barriers.set(key, resolve))
    let offClose: Disposer = () => undefined
    const lost = new Promise<void>((_, reject) => {
      offClose = connection.onClose(() => reject(new Error('the connection closed before its drain marker arrived')))
    })
    // Handled here at once: the connection may close while the marker is being published, before the race below.
    lost.catch(() => undefined)
    try {
      await connection.publishNow(this.#o.topics.barrier(connection.clientId), nonce, { qos: 1 })
      await raceTimeout(Promise.race([seen, lost]), BARRIER_TIMEOUT_MS, () => {
        throw new Error(`the drain marker did not arrive within ${BARRIER_TIMEOUT_MS} ms`)
      })
    } finally {
      offClose()
      this.#barriers.delete(key)
    }
  }

  #consider(brokerId: string, sessionId: string, state: MemberState | undefined): void {
    const { options } = this.#o
    const scope = this.#o.perBroker() ? `${brokerId}|${sessionId}` : sessionId
    const adoption = this.#adoptions.get(scope)
    if (state !== 'orphaned' && state !== 'left') {
      if (adoption && !adoption.running) {
        clearTimeout(adoption.timer)
        this.#adoptions.delete(scope)
      }
      return
    }
    if (!options.sessions.adoptOrphans || this.#stopped || this.#ignored.has(scope) || adoption) return
    const created: Adoption = { scope, sessionId, brokerId, timer: undefined, running: undefined, attempts: 0 }
    this.#adoptions.set(scope, created)
    // MQTT 3.1.1 has no will delay: the grace is waited here (an instance that comes back says `online` and cancels it).
    const grace = state === 'orphaned' && options.protocolVersion === 4 ? options.sessions.orphanAfterSeconds * 1000 : 0
    this.#schedule(created, grace + this.#turn(brokerId))
  }

  /**
   * How long to wait before adopting: the online instance with the smallest
   * session id on the broker goes first, the others only if the session is
   * still orphaned a while later (the first one may have gone too). Two
   * instances adopting one session take it from each other and handle what
   * was in flight twice.
   */
  #turn(brokerId: string): number {
    // This instance is online there even if its own presence message has not come back yet.
    const mine = this.#o.sessionOn(brokerId)
    const online = [...(this.#members.get(brokerId) ?? new Map<string, MemberState>())].filter(([, state]) => state === 'online').map(([id]) => id)
    const first = mine !== undefined && [...online, mine].sort()[0] === mine
    return (first ? 0 : ADOPTION_STANDBY_MS) + Math.random() * ADOPTION_JITTER_MS
  }

  #schedule(adoption: Adoption, delayMs: number): void {
    clearTimeout(adoption.timer)
    adoption.timer = setTimeout(() => {
      adoption.timer = undefined
      if (!this.#o.serving() || !this.#o.sync.known || this.#stopped) return
      const state = this.#members.get(adoption.brokerId)?.get(adoption.sessionId)
      if (state !== 'orphaned' && state !== 'left') {
        this.#adoptions.delete(adoption.scope)
        return
      }
      adoption.running = this.#adopt(adoption).finally(() => (adoption.running = undefined))
    }, delayMs)
  }

  async #adopt(adoption: Adoption): Promise<void> {
    const { options, log } = this.#o
    const endpoint = this.#o.adoptionEndpoint(adoption.brokerId)
    const receiver = this.#o.receiver()
    let outcome: AdoptionOutcome | 'failed'
    if (!endpoint || !receiver) {
      outcome = 'failed'
    } else {
      // Its owner's session settings and will: if this instance dies while adopting, the session is orphaned again.
      const connection = { ...sessionOptions(options, endpoint, adoption.sessionId, log, this.will(adoption.sessionId)), clean: false }
      outcome = await adoptSession({
        connection, topics: this.#o.topics, sync: this.#o.sync, receiver, log, drainTimeoutMs: 60_000, closeTimeoutMs: options.closeTimeoutMs,
        ownFilters: [...this.subscriptions(adoption.sessionId).map((s) => s.topic), MOSQUITTO_DROPPED_TOPIC],
        signal: this.#abort.signal,
      }).catch((error: unknown) => {
        log.warn('adopting a session failed; trying again later', { broker: endpoint.id, session: adoption.sessionId, error })
        return 'failed' as const
      })
    }
    if (outcome === 'drained' || outcome === 'absent') {
      if (outcome === 'drained') {
        this.counts.adopted++
        this.#adopted.emit({ broker: endpoint!.id, session: adoption.sessionId })
      } else {
        this.counts.adoptionsSkipped++
      }
      this.#members.get(adoption.brokerId)?.delete(adoption.sessionId)
      this.#adoptions.delete(adoption.scope)
      return
    }
    this.counts.adoptionsSkipped++
    if (outcome === 'foreign') {
      this.#ignored.add(adoption.scope)
      this.#adoptions.delete(adoption.scope)
      return
    }
    // Interrupted (its owner came back, another instance took it) or failed: again later, if it is still orphaned.
    if (this.#stopped) return
    adoption.attempts++
    this.#schedule(adoption, Math.min(RETRY_CAP_MS, RETRY_MS * 2 ** (adoption.attempts - 1)) * (0.5 + Math.random()))
  }
}
