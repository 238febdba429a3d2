import type { Logger } from '../../routemq/logger.js'
import type { MessageContext } from '../../routemq/message-context.js'
import { parkMessage } from '../../routemq/message-parking.js'
import type { InboundMessage } from '../../routemq/mqtt-transport.js'
import { WakeSignal } from '../../wake-signal.js'
import type { HealthMonitor } from '../health-monitor.js'
import { MessageSpool, type SpoolEntry, type SpooledMessage } from './message-spool.js'

/** Options of a health gate's spool (`healthGate(..., { spool })`). */
export interface SpoolOptions {
  /**
   * Directory of the spool, kept across restarts: one per app instance (a
   * volume of its own, e.g. a StatefulSet's), so that the next start of the
   * same instance replays what a crash left there. Required.
   */
  readonly path: string
  /** Most bytes of messages (topic, payload, properties) spooled at once. Default 256 MiB. */
  readonly maxBytes?: number
  /**
   * When the spool is full: `'wait'` (default) stops taking messages, which
   * stay unacknowledged so the broker keeps them (its drop counter shows what
   * it cannot keep); `'reject'` fails them with `DependencyUnavailableError`
   * (`reason: 'spool-full'`), for the route's error policy to decide.
   */
  readonly whenFull?: 'wait' | 'reject'
}

/** What a gate's spool holds and did. */
export interface SpoolStats {
  /** Messages in the spool now. */
  readonly messages: number
  readonly bytes: number
  readonly maxBytes: number
  /** Age of the oldest message in the spool, in ms (0 when empty). */
  readonly oldestAgeMs: number
  /** Messages written to the spool (and then acknowledged to the broker), ever. */
  readonly spooledTotal: number
  /** Spooled messages handed to their route again and settled there, ever. */
  readonly replayedTotal: number
  /** Messages that waited for room because the spool was full, ever. */
  readonly waitedForRoomTotal: number
  /** Messages waiting for room now (unacknowledged). */
  readonly waitingForRoom: number
}

/** Hands a message to the application's dispatcher; false when it takes none now (not started, or stopping). */
export type ReplayInto = (message: InboundMessage) => boolean

/** Replayed messages handed to the dispatcher at once. */
const REPLAY_WINDOW = 64
/** Before a spooled message that was left unacknowledged (`'redeliver'`, a stop) is handed over again. */
const RETRY_DELAY_MS = 1000
/** Before asking again whether the application takes messages (it is still starting). */
const NOT_STARTED_DELAY_MS = 100
export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024

/**
 * The spool side of a health gate. While the gate's dependencies are down,
 * `keep` writes each message to a `MessageSpool` and resolves once it is on
 * disk, so the message is acknowledged to the broker then and the broker's
 * queue never has to hold an outage. When the dependencies are healthy, the
 * replay loop hands spooled messages back to the application's dispatcher in
 * arrival order (a window of 64 at a time; the dispatcher keeps one topic's
 * messages in order), and removes each once its route settled it. A route
 * with messages in the spool spools its new ones too, behind them.
 *
 * @example
 * const spool = new GateSpool({ path: '/var/lib/app/spool' }, ['primary'])
 * spool.open({ monitor, replay: (m) => app.replay(m), logger })
 */
export class GateSpool {
  readonly options: Readonly<Required<SpoolOptions>>
  readonly #dependencies: readonly string[]
  #spool: MessageSpool | undefined
  #monitor: HealthMonitor | undefined
  #replay: ReplayInto | undefined
  #log: Logger | undefined
  /** The spool entry of each message replayed now, by its payload buffer (the context's `raw`). */
  readonly #tickets = new WeakMap<Buffer, Ticket>()
  readonly #wake = new WakeSignal()
  readonly #roomWaiters: { readonly bytes: number; readonly go: () => void }[] = []
  #loop: Promise<void> | undefined
  #abort: AbortController | undefined
  /** Entries read in this pass and not yet settled: handed over, or waiting behind their topic's. */
  #replaying = 0
  /** Per topic with a replay in flight: the entries read after it, handed over one by one as each settles. */
  readonly #topics = new Map<string, SpoolEntry[]>()
  /** Highest key handed to the dispatcher in this pass. */
  #cursor = 0
  #retry = false
  /** A replayed message was given back in this pass: the rest of the pass goes back too, so that none overtakes it. */
  #passAborted = false
  /** Replays wait for the dependencies to pass a check started after this (a handler's outage error; epoch ms). */
  #outageSince = 0
  #spooledTotal = 0
  #replayedTotal = 0
  #waitedTotal = 0

  constructor(options: SpoolOptions, dependencies: readonly string[]) {
    this.options = Object.freeze({ path: options.path, maxBytes: options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES, whenFull: options.whenFull ?? 'wait' })
    this.#dependencies = dependencies
  }

  /** True once `open` ran and until `close`. */
  get isOpen(): boolean {
    return this.#spool !== undefined
  }

  /** Opens the store (replaying what an earlier run left there once the dependencies are healthy) and starts the replay loop. */
  open(context: { readonly monitor: HealthMonitor; readonly replay: ReplayInto; readonly logger: Logger; readonly field: string }): void {
    if (this.#spool) return
    this.#spool = MessageSpool.open(this.options.path, `${context.field}.path`)
    this.#monitor = context.monitor
    this.#replay = context.replay
    this.#log = context.logger
    this.#cursor = 0
    if (this.#spool.count > 0) {
      context.logger.warn('the spool holds messages from an earlier run; they go to their routes first once the dependencies are healthy', {
        spool: this.#spool.path, messages: this.#spool.count, bytes: this.#spool.bytes,
      })
    }
    this.#abort = new AbortController()
    this.#loop = this.#replayLoop(this.#abort.signal).catch((error: unknown) => this.#log?.error('the spool replay stopped unexpectedly', { error }))
  }

  /** Stops the replay loop and closes the store; messages waiting for room stay unacknowledged. */
  async close(): Promise<void> {
    const spool = this.#spool
    if (!spool) return
    this.#abort?.abort()
    this.#wake.wake()
    for (const waiter of this.#roomWaiters.splice(0)) waiter.go()
    await this.#loop
    this.#spool = undefined
    await spool.close()
  }

  get stats(): SpoolStats {
    const spool = this.#spool
    const oldest = spool?.oldestSpooledAt
    return Object.freeze({
      messages: spool?.count ?? 0,
      bytes: spool?.bytes ?? 0,
      maxBytes: this.options.maxBytes,
      oldestAgeMs: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest),
      spooledTotal: this.#spooledTotal,
      replayedTotal: this.#replayedTotal,
      waitedForRoomTotal: this.#waitedTotal,
      waitingForRoom: this.#roomWaiters.length,
    })
  }

  /** True for a message this spool is replaying now: it is on disk already and must not be spooled again. */
  isReplay(ctx: MessageContext): boolean {
    return this.#tickets.has(ctx.raw)
  }

  /** Replayed messages may run only once the dependencies passed a check started after this. */
  get outageSince(): number {
    return this.#outageSince
  }

  /** True once a replayed message of this pass went back: the others of the pass go back too. */
  get passAborted(): boolean {
    return this.#passAborted
  }

  /**
   * A replayed message met an outage (at `outageAt`): it stays in the spool
   * as it was, and the pass starts again once the dependencies recovered.
   * Its context settles successfully; the spool keeps the message anyway.
   */
  giveBack(ctx: MessageContext, outageAt: number): undefined {
    const ticket = this.#tickets.get(ctx.raw)
    if (ticket) ticket.givenBack = true
    this.#passAborted = true
    this.#outageSince = Math.max(this.#outageSince, outageAt)
    return undefined
  }

  /** True when a new message of `route` must go behind spooled ones (or ones waiting for room). */
  mustSpool(route: string): boolean {
    return (this.#spool?.countOf(route) ?? 0) > 0 || this.#roomWaiters.length > 0
  }

  /** True when `ctx` would not fit now. */
  isFull(ctx: MessageContext): boolean {
    const spool = this.#spool
    return spool !== undefined && spool.bytes + MessageSpool.bytesOf(toSpooled(ctx, 0)) > this.options.maxBytes
  }

  /**
   * Writes the message to the spool, after the ones waiting for room, and
   * resolves once it is on disk. Its handler slot is free meanwhile. Rejects
   * when the gate closes before there was room (the message then stays
   * unacknowledged).
   */
  async keep(ctx: MessageContext, outageAt = 0): Promise<void> {
    this.#outageSince = Math.max(this.#outageSince, outageAt)
    const spool = this.#spool
    if (!spool) throw new Error('the spool is not open')
    const message = toSpooled(ctx, Date.now())
    const bytes = MessageSpool.bytesOf(message)
    const unpark = parkMessage(ctx)
    try {
      if (this.#roomWaiters.length > 0 || spool.bytes + bytes > this.options.maxBytes) {
        this.#waitedTotal++
        await new Promise<void>((go) => this.#roomWaiters.push({ bytes, go }))
        if (this.#spool !== spool) throw new Error('the gate closed while the message waited for room in the spool')
      }
      await spool.append({ ...message, spooledAt: Date.now() })
      this.#spooledTotal++
      this.#wake.wake()
    } finally {
      unpark()
    }
  }

  /** Lets messages waiting for room in, in order, as far as there is room. */
  #admit(): void {
    const spool = this.#spool
    if (!spool) return
    let bytes = spool.bytes
    while (this.#roomWaiters.length > 0 && bytes + this.#roomWaiters[0]!.bytes <= this.options.maxBytes) {
      const waiter = this.#roomWaiters.shift()!
      bytes += waiter.bytes
      waiter.go()
    }
  }

  async #replayLoop(signal: AbortSignal): Promise<void> {
    const spool = this.#spool!
    const monitor = this.#monitor!
    while (!signal.aborted) {
      if (spool.count - this.#replaying <= 0 || this.#replaying >= REPLAY_WINDOW || this.#passAborted) {
        await this.#wake.idle(this.#retry ? RETRY_DELAY_MS : 60_000)
        this.#restartPassIfDue()
        continue
      }
      const healthy = await monitor.whenHealthy(this.#dependencies, this.#outageSince, signal).then(() => true, () => false)
      if (!healthy || signal.aborted) return
      const batch = spool.entriesAfter(this.#cursor, REPLAY_WINDOW - this.#replaying)
      if (batch.length === 0) {
        // Everything in the spool was handed over in this pass: wait for it to settle (or for a retry).
        await this.#wake.idle(this.#retry ? RETRY_DELAY_MS : 60_000)
        this.#restartPassIfDue()
        continue
      }
      for (const entry of batch) {
        const behind = this.#topics.get(entry.message.topic)
        if (behind) {
          behind.push(entry)
          this.#replaying++
        } else if (this.#handOver(entry)) {
          this.#topics.set(entry.message.topic, [])
        } else {
          await this.#wake.idle(NOT_STARTED_DELAY_MS)
          break
        }
        this.#cursor = entry.key
      }
    }
  }

  /** After messages were left unacknowledged, the next pass starts from the beginning again once the others settled. */
  #restartPassIfDue(): void {
    if (!this.#retry || this.#replaying > 0) return
    this.#retry = false
    this.#passAborted = false
    this.#cursor = 0
  }

  /** The topic's replay settled: hands over the next entry of the topic, in key order, if one was read. */
  #next(topic: string): void {
    const behind = this.#topics.get(topic)
    const next = behind?.shift()
    if (!next) {
      this.#topics.delete(topic)
      return
    }
    this.#replaying--
    if (this.#handOver(next)) return
    // The application stopped taking messages: what was read stays in the spool for the next pass.
    this.#replaying -= behind!.length
    this.#topics.delete(topic)
    this.#retry = true
  }

  #handOver(entry: SpoolEntry): boolean {
    const { message } = entry
    // A buffer of its own: the context's raw is how the gate recognises the replay.
    const payload = Buffer.from(message.payload)
    let settled = false
    const ticket: Ticket = { entry, givenBack: false }
    const inbound: InboundMessage = {
      topic: message.topic,
      payload,
      qos: message.qos,
      retain: message.retain,
      dup: false,
      properties: message.properties,
      broker: message.broker,
      settle: (acknowledge) => {
        if (settled) return
        settled = true
        this.#replaying--
        this.#tickets.delete(payload)
        if (acknowledge && !ticket.givenBack) {
          this.#replayedTotal++
          this.#spool?.remove(entry).then(() => this.#admit(), (error: unknown) => this.#log?.error('removing a replayed message from the spool failed', { error }))
          this.#admit()
        } else {
          this.#retry = true
        }
        this.#next(message.topic)
        this.#wake.wake()
      },
    }
    this.#tickets.set(payload, ticket)
    this.#replaying++
    if (this.#replay!(inbound)) return true
    this.#replaying--
    this.#tickets.delete(payload)
    return false
  }
}

/** A message being replayed: its entry, and whether the gate gave it back to the spool. */
interface Ticket {
  readonly entry: SpoolEntry
  givenBack: boolean
}

function toSpooled(ctx: MessageContext, spooledAt: number): SpooledMessage {
  let properties = ctx.properties
  if (properties?.subscriptionIdentifier !== undefined) {
    const { subscriptionIdentifier: _dropped, ...rest } = properties
    properties = rest
  }
  return { route: ctx.route.pattern, topic: ctx.topic, payload: ctx.raw, qos: ctx.qos, retain: ctx.retain, properties, broker: ctx.broker, spooledAt }
}
