import type { Logger } from '../../routemq/plugin-api.js'
import type { MessageContext } from '../../routemq/plugin-api.js'
import { parkMessage } from '../../routemq/plugin-api.js'
import { runToHandler } from '../../routemq/plugin-api.js'
import type { Next } from '../../routemq/plugin-api.js'
import { preciseNow } from '../precise-now.js'
import type { HealthMonitor } from '../health-monitor.js'
import { MessageSpool, type SpooledMessage } from './message-spool.js'
import { SpoolReplayer, type ReplayInto } from './spool-replayer.js'

export type { ReplayInto } from './spool-replayer.js'

/** What the gate lends its spool: its counters and its error for a full spool. */
export interface SpoolGateHooks {
  /** A handler failed with an outage error of a dependency. */
  outageRetry(): void
  /** The `DependencyUnavailableError` (`'spool-full'`) to fail a message that does not fit, with `whenFull: 'reject'`. */
  full(): Error
}

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
  /** The gate's label on the spool metrics (`gate="primary"`); its check is `spool:<label>`, with `/` for `,`. */
  readonly label: string
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
  /** Messages whose write the store refused, waiting (unacknowledged) to try again. */
  readonly writesFailing: number
  /** Why the store refuses writes, while it does. */
  readonly writeError: string | undefined
}

export const DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
/** Between two tries of a write the store refused. */
const WRITE_RETRY_MS = 1000

/**
 * The spool side of a health gate. While the gate's dependencies are down,
 * `keep` writes each message to a `MessageSpool` and resolves once it is on
 * disk, so the message is acknowledged to the broker then and the broker's
 * queue never has to hold an outage. When the dependencies are healthy, the
 * `SpoolReplayer` hands spooled messages back to the application's
 * dispatcher in arrival order and removes each once its route settled it. A
 * route with messages in the spool spools its new ones too, behind them; a
 * full spool lets messages wait for room, unacknowledged, in arrival order.
 *
 * @example
 * const spool = new GateSpool({ path: '/var/lib/app/spool' }, ['primary'])
 * spool.open({ monitor, replay: (m) => app.replay(m), logger })
 */
export class GateSpool {
  readonly options: Readonly<Required<SpoolOptions>>
  readonly #dependencies: readonly string[]
  #spool: MessageSpool | undefined
  #replayer: SpoolReplayer | undefined
  readonly #roomWaiters: { readonly bytes: number; readonly go: () => void }[] = []
  /** Names the spool in metrics and its check: the gate's dependencies, with `[n]` for a second gate of the same. */
  #label: string
  /** Bytes of messages let in from the room queue and not yet counted by the store. */
  #reserved = 0
  #log: Logger | undefined
  /** The store's last refusal, while writes fail. */
  #writeError: string | undefined
  #writesFailing = 0
  #spooledTotal = 0
  #replayedBefore = 0
  #waitedTotal = 0

  constructor(options: SpoolOptions, dependencies: readonly string[]) {
    this.options = Object.freeze({ path: options.path, maxBytes: options.maxBytes ?? DEFAULT_SPOOL_MAX_BYTES, whenFull: options.whenFull ?? 'wait' })
    this.#dependencies = dependencies
    this.#label = dependencies.join(',')
  }

  /** True once `open` ran and until `close`. */
  get isOpen(): boolean {
    return this.#spool !== undefined
  }

  /** Opens the store (replaying what an earlier run left there once the dependencies are healthy) and starts the replay loop. */
  open(context: { readonly monitor: HealthMonitor; readonly replay: ReplayInto; readonly logger: Logger; readonly field: string; readonly label?: string }): void {
    if (this.#spool) return
    this.#label = context.label ?? this.#label
    const spool = MessageSpool.open(this.options.path, `${context.field}.path`)
    this.#spool = spool
    this.#log = context.logger
    this.#reserved = 0
    this.#writeError = undefined
    if (spool.count > 0) {
      context.logger.warn('the spool holds messages from an earlier run; they go to their routes first once the dependencies are healthy', {
        spool: spool.path, messages: spool.count, bytes: spool.bytes,
      })
    }
    this.#replayer = new SpoolReplayer({
      spool, monitor: context.monitor, dependencies: this.#dependencies, replay: context.replay, log: context.logger, onRemoved: () => this.#admit(),
    })
    this.#replayer.start()
  }

  /** Stops the replay loop and closes the store; messages waiting for room stay unacknowledged. */
  async close(): Promise<void> {
    const spool = this.#spool
    const replayer = this.#replayer
    if (!spool || !replayer) return
    this.#spool = undefined
    this.#replayer = undefined
    for (const waiter of this.#roomWaiters.splice(0)) waiter.go()
    await replayer.stop()
    this.#replayedBefore += replayer.replayedTotal
    await spool.close()
  }

  get stats(): SpoolStats {
    const spool = this.#spool
    const oldest = spool?.oldestSpooledAt
    return Object.freeze({
      label: this.#label,
      messages: spool?.count ?? 0,
      bytes: spool?.bytes ?? 0,
      maxBytes: this.options.maxBytes,
      oldestAgeMs: oldest === undefined ? 0 : Math.max(0, Date.now() - oldest),
      spooledTotal: this.#spooledTotal,
      replayedTotal: this.#replayedBefore + (this.#replayer?.replayedTotal ?? 0),
      waitedForRoomTotal: this.#waitedTotal,
      waitingForRoom: this.#roomWaiters.length,
      writesFailing: this.#writesFailing,
      writeError: this.#writeError,
    })
  }

  /**
   * The gate's way for one message when it has a spool; nothing waits in
   * memory. A message that may not run now (a dependency is down, or its
   * route has messages in the spool) is spooled, and so is one whose handler
   * met an outage. A message the spool replays that meets a dependency down
   * again goes back to the spool untouched, and so does the rest of that pass.
   * Resolves (the message is then acknowledged) once it is handled or on disk.
   */
  async pass(ctx: MessageContext, next: Next, monitor: HealthMonitor, gate: SpoolGateHooks): Promise<unknown> {
    const replayer = this.#replayer!
    const replayed = replayer.isReplay(ctx)
    const mayRun = replayed
      ? monitor.isHealthy(this.#dependencies, replayer.outageSince) && !replayer.passAborted
      : monitor.isHealthy(this.#dependencies, 0) && (this.#spool?.countOf(ctx.route.pattern) ?? 0) === 0 && this.#roomWaiters.length === 0
    if (!mayRun) return replayed ? replayer.giveBack(ctx, preciseNow()) : this.#keepOrRefuse(ctx, 0, gate)
    try {
      return await runToHandler(ctx, next)
    } catch (error) {
      if (!this.#dependencies.some((name) => monitor.isOutage(name, error))) throw error
      // Before the probes noticed: replayed only once a check that started after this failure passed.
      gate.outageRetry()
      return replayed ? replayer.giveBack(ctx, preciseNow()) : this.#keepOrRefuse(ctx, preciseNow(), gate)
    }
  }

  async #keepOrRefuse(ctx: MessageContext, outageAt: number, gate: SpoolGateHooks): Promise<undefined> {
    const message = toSpooled(ctx, Date.now())
    const bytes = MessageSpool.bytesOf(message)
    if (this.options.whenFull === 'reject' && (this.#roomWaiters.length > 0 || !this.#fits(bytes))) throw gate.full()
    await this.#keep(ctx, message, bytes, outageAt)
    return undefined
  }

  /**
   * Writes the message to the spool, after the ones waiting for room, and
   * resolves once it is on disk. Its handler slot is free meanwhile. A
   * handler's outage at `outageAt` holds the replays until a check that
   * started later passed. Rejects when the gate closes before there was
   * room (the message then stays unacknowledged).
   */
  async #keep(ctx: MessageContext, message: SpooledMessage, bytes: number, outageAt: number): Promise<void> {
    const spool = this.#spool
    if (!spool) throw new Error('the spool is not open')
    this.#replayer!.noteOutage(outageAt)
    const unpark = parkMessage(ctx)
    try {
      if (this.#roomWaiters.length > 0 || !this.#fits(bytes)) {
        this.#waitedTotal++
        // Let in by #admit, which reserves its bytes until the append below counts them.
        await new Promise<void>((go) => this.#roomWaiters.push({ bytes, go }))
        this.#reserved -= bytes
        if (this.#spool !== spool) throw new Error('the gate closed while the message waited for room in the spool')
      }
      await this.#append(spool, { ...message, spooledAt: Date.now() })
      this.#spooledTotal++
      this.#replayer?.wake()
    } finally {
      unpark()
    }
  }

  /**
   * Appends, and tries again every second while the store refuses (a full
   * disk): the message stays unacknowledged meanwhile, never acknowledged
   * without being on disk. Logged at ERROR once per episode.
   */
  async #append(spool: MessageSpool, message: SpooledMessage): Promise<void> {
    // Keeps its key while it is retried: nothing spooled after it is replayed before it.
    const key = spool.reserve(message)
    for (;;) {
      try {
        await spool.write(key, message)
        if (this.#writeError !== undefined && this.#writesFailing === 0) {
          this.#log?.info('the spool writes again', { spool: spool.path })
          this.#writeError = undefined
        }
        return
      } catch (error) {
        if (this.#spool !== spool) {
          spool.forget(key, message)
          throw error
        }
        if (this.#writeError === undefined) this.#log?.error('the spool cannot write; messages wait unacknowledged until it can', { spool: spool.path, error })
        this.#writeError = (error as Error).message ?? String(error)
        this.#writesFailing++
        await new Promise((resolve) => setTimeout(resolve, WRITE_RETRY_MS).unref())
        this.#writesFailing--
      }
    }
  }

  /** True when `bytes` more fit; a message larger than `maxBytes` fits an empty spool, or it would wait for ever. */
  #fits(bytes: number): boolean {
    const spool = this.#spool!
    const taken = spool.bytes + this.#reserved
    return taken + bytes <= this.options.maxBytes || (spool.count === 0 && this.#reserved === 0)
  }

  /** Lets messages waiting for room in, in order, as far as there is room. */
  #admit(): void {
    if (!this.#spool) return
    while (this.#roomWaiters.length > 0 && this.#fits(this.#roomWaiters[0]!.bytes)) {
      const waiter = this.#roomWaiters.shift()!
      this.#reserved += waiter.bytes
      waiter.go()
    }
  }
}

function toSpooled(ctx: MessageContext, spooledAt: number): SpooledMessage {
  let properties = ctx.properties
  if (properties?.subscriptionIdentifier !== undefined) {
    const { subscriptionIdentifier: _dropped, ...rest } = properties
    properties = rest
  }
  return { route: ctx.route.pattern, topic: ctx.topic, payload: ctx.raw, qos: ctx.qos, retain: ctx.retain, properties, broker: ctx.broker, spooledAt }
}
