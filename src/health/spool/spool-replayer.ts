import type { Logger } from '../../routemq/plugin-api.js'
import type { MessageContext } from '../../routemq/plugin-api.js'
import type { InboundMessage } from '../../routemq/plugin-api.js'
import { WakeSignal } from '../../wake-signal.js'
import type { HealthMonitor } from '../health-monitor.js'
import type { MessageSpool, SpoolEntry } from './message-spool.js'

/** Hands a message to the application's dispatcher; false when it takes none now (not started, or stopping). */
export type ReplayInto = (message: InboundMessage) => boolean

/** Entries read from the spool and not yet settled, at most. */
const REPLAY_WINDOW = 64
/** Before a pass that left messages in the spool (a give-back, `'redeliver'`, a stop) starts again; doubled each time in a row, up to the cap. */
const RETRY_DELAY_MS = 1000
const RETRY_CAP_MS = 30_000
/** Before asking again whether the application takes messages (it is still starting). */
const NOT_STARTED_DELAY_MS = 100
/** Longest idle wait of the loop; it is woken by every write and settlement. */
const IDLE_MS = 60_000

/** A message being replayed: its entry, and whether the gate gave it back to the spool. */
interface Ticket {
  readonly entry: SpoolEntry
  givenBack: boolean
}

/** What a `SpoolReplayer` works with. */
export interface SpoolReplayerOptions {
  readonly spool: MessageSpool
  readonly monitor: HealthMonitor
  readonly dependencies: readonly string[]
  readonly replay: ReplayInto
  readonly log: Logger
  /** A replayed message was removed from the spool: there is room again. */
  readonly onRemoved: () => void
}

/**
 * Gives a spool's messages back to the application once the dependencies
 * are healthy: in key (arrival) order, at most 64 read at a time, and one
 * message per topic in flight, the next of the topic handed over when it
 * settled. (The dispatcher does not order replays: a newer message of the
 * topic may be waiting at the gate for the room this replay makes.) A message
 * is removed once its route acknowledged it; one the gate gave back, or the
 * dispatcher left unacknowledged, stays for a later pass.
 *
 * @example
 * const replayer = new SpoolReplayer({ spool, monitor, dependencies: ['primary'], replay: (m) => app.replay(m), log, onRemoved })
 * replayer.start(); ...; await replayer.stop()
 */
export class SpoolReplayer {
  readonly #o: SpoolReplayerOptions
  /** The ticket of each message replayed now, by its payload buffer (the context's `raw`). */
  readonly #tickets = new WeakMap<Buffer, Ticket>()
  readonly #wake = new WakeSignal()
  readonly #abort = new AbortController()
  #loop: Promise<void> | undefined
  /** Entries read in this pass and not yet settled: handed over, or waiting behind their topic's. */
  #reading = 0
  /** Per topic with a replay in flight: the entries read after it, handed over one by one as each settles. */
  readonly #topics = new Map<string, SpoolEntry[]>()
  /** Highest key read in this pass. */
  #cursor = 0
  /** A pass left messages in the spool: the next starts from the beginning at `#retryAt`, once this one settled. */
  #retry = false
  #retryAt = 0
  /** Per spooled message its route left unacknowledged: how many times in a row, for its backoff. */
  readonly #withheld = new Map<number, number>()
  /** Topics with a withheld message in this pass: the rest of each stays in the spool until the next. */
  readonly #heldBack = new Set<string>()
  /** A replayed message was given back in this pass: the rest of the pass goes back too, so that none overtakes it. */
  #passAborted = false
  /** Replays wait for the dependencies to pass a check started after this (an outage a handler met; epoch ms). */
  #outageSince = 0
  #replayedTotal = 0

  constructor(options: SpoolReplayerOptions) {
    this.#o = options
  }

  start(): void {
    this.#loop ??= this.#run(this.#abort.signal).catch((error: unknown) => this.#o.log.error('the spool replay stopped unexpectedly', { error }))
  }

  /** Ends the loop; replays in flight settle on their own, and what they leave stays in the spool. */
  async stop(): Promise<void> {
    this.#abort.abort()
    this.#wake.wake()
    await this.#loop
  }

  /** Spooled messages replayed and acknowledged by their route, ever. */
  get replayedTotal(): number {
    return this.#replayedTotal
  }

  /** True for a message replayed now: it is on disk already and must not be spooled again. */
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

  /** A handler met an outage at `at`: replays wait for a check that started later. */
  noteOutage(at: number): void {
    this.#outageSince = Math.max(this.#outageSince, at)
  }

  /** Something was spooled: the loop may have work. */
  wake(): void {
    this.#wake.wake()
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
    this.noteOutage(outageAt)
    return undefined
  }

  async #run(signal: AbortSignal): Promise<void> {
    const { spool, monitor, dependencies } = this.#o
    while (!signal.aborted) {
      if (spool.count - this.#reading <= 0 || this.#reading >= REPLAY_WINDOW || this.#passAborted) {
        await this.#idle()
        continue
      }
      const healthy = await monitor.whenHealthy(dependencies, this.#outageSince, signal).then(() => true, () => false)
      if (signal.aborted) return
      if (!healthy) {
        // The monitor is stopped (a failed start, about to be retried): ask again later.
        await this.#wake.idle(RETRY_DELAY_MS)
        continue
      }
      const batch = spool.entriesAfter(this.#cursor, REPLAY_WINDOW - this.#reading)
      if (batch.length === 0) {
        // Everything in the spool was read in this pass: wait for it to settle (or for a retry).
        await this.#idle()
        continue
      }
      for (const entry of batch) {
        if (this.#heldBack.has(entry.message.topic)) {
          this.#cursor = entry.key
          continue
        }
        const behind = this.#topics.get(entry.message.topic)
        if (behind) {
          behind.push(entry)
          this.#reading++
        } else {
          // Recorded first: the dispatcher may settle it before handOver returns (no route, a malformed body).
          this.#topics.set(entry.message.topic, [])
          if (!this.#handOver(entry)) {
            this.#topics.delete(entry.message.topic)
            await this.#wake.idle(NOT_STARTED_DELAY_MS)
            break
          }
        }
        this.#cursor = entry.key
      }
    }
  }

  /** Waits for a settlement or a write; then, once a pass that left messages behind has settled, starts the next from the beginning. */
  async #idle(): Promise<void> {
    // Replays still in flight wake the loop as they settle; only a settled pass waits for its retry time.
    await this.#wake.idle(this.#retry && this.#reading === 0 ? Math.max(0, this.#retryAt - Date.now()) : IDLE_MS)
    if (!this.#retry || this.#reading > 0 || Date.now() < this.#retryAt) return
    this.#retry = false
    this.#passAborted = false
    this.#heldBack.clear()
    this.#cursor = 0
  }

  /** This pass left a message in the spool: the next pass starts from the beginning `delayMs` from now at the earliest. */
  #retryLater(delayMs: number): void {
    this.#retryAt = Math.max(this.#retry ? this.#retryAt : 0, Date.now() + delayMs)
    this.#retry = true
  }

  /**
   * The route left a replayed message unacknowledged (`'redeliver'`, a
   * failed dead letter): its topic waits for the next pass, 1 s later,
   * doubling for each time in a row up to 30 s, so a poison message costs
   * little. Other topics go on.
   */
  #withhold(entry: SpoolEntry): void {
    const times = (this.#withheld.get(entry.key) ?? 0) + 1
    this.#withheld.set(entry.key, times)
    this.#heldBack.add(entry.message.topic)
    this.#retryLater(Math.min(RETRY_CAP_MS, RETRY_DELAY_MS * 2 ** (times - 1)))
  }

  /** The topic's replay settled: hands over the next entry of the topic, in key order, if one was read. */
  #next(topic: string): void {
    const behind = this.#topics.get(topic) ?? []
    if (this.#heldBack.has(topic) || this.#passAborted) {
      // The rest of the topic (or of the pass) stays in the spool for the next pass.
      this.#reading -= behind.length
      this.#topics.delete(topic)
      return
    }
    const next = behind.shift()
    if (!next) {
      this.#topics.delete(topic)
      return
    }
    this.#reading--
    if (this.#handOver(next)) return
    // The application stopped taking messages: what was read stays in the spool for the next pass.
    this.#reading -= behind.length
    this.#topics.delete(topic)
    this.#retryLater(RETRY_DELAY_MS)
  }

  #handOver(entry: SpoolEntry): boolean {
    const { message } = entry
    // A buffer of its own: the context's raw is how the gate recognises the replay.
    const payload = Buffer.from(message.payload)
    const ticket: Ticket = { entry, givenBack: false }
    let settled = false
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
        this.#reading--
        this.#tickets.delete(payload)
        if (acknowledge && !ticket.givenBack) {
          this.#replayedTotal++
          this.#withheld.delete(entry.key)
          this.#o.spool.remove(entry).then(() => {
            this.#o.onRemoved()
            this.#wake.wake()
          }, (error: unknown) => this.#o.log.error('removing a replayed message from the spool failed', { error }))
          this.#o.onRemoved()
        } else if (ticket.givenBack) {
          // Met an outage: the rest of the pass goes back too, and the next pass waits for a later check.
          this.#passAborted = true
          this.#retryLater(RETRY_DELAY_MS)
        } else {
          this.#withhold(entry)
        }
        this.#next(message.topic)
        this.#wake.wake()
      },
    }
    this.#tickets.set(payload, ticket)
    this.#reading++
    if (this.#o.replay(inbound)) return true
    this.#reading--
    this.#tickets.delete(payload)
    return false
  }
}
