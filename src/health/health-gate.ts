import { InvalidOptionError } from '../routemq/plugin-api.js'
import { runToHandler, trackOutcome } from '../routemq/plugin-api.js'
import type { MessageContext } from '../routemq/plugin-api.js'
import { checkOptions } from '../routemq/plugin-api.js'
import { parkMessage } from '../routemq/plugin-api.js'
import type { Middleware, Next } from '../routemq/plugin-api.js'
import { HEALTH_MONITOR } from '../tokens.js'
import { DependencyUnavailableError, type GateRejection } from './errors/dependency-unavailable-error.js'
import { HEALTH_GATE_OPTIONS_SHAPE } from './health-gate-options-shape.js'
import { preciseNow } from './precise-now.js'
import type { HealthMonitor } from './health-monitor.js'
import { GateSpool, type ReplayInto, type SpoolOptions, type SpoolStats } from './spool/gate-spool.js'
import type { Logger } from '../routemq/plugin-api.js'

/** Options of `healthGate`. */
export interface HealthGateOptions {
  /**
   * `'hold'` (default): while a dependency is not healthy, messages wait
   * unacknowledged and go on, in arrival order per route, once it is;
   * `'reject'`: they fail at once with `DependencyUnavailableError`.
   */
  readonly mode?: 'hold' | 'reject'
  /** Messages held at once by this gate, over every route it guards; one more is rejected. Default 1000. */
  readonly maxHeld?: number
  /** Longest a message is held, from when it was first held; then it is rejected. Default 60 000 ms. */
  readonly maxHoldMs?: number
  /** The monitor to ask. Default: the one `HealthModule` attaches, else `HEALTH_MONITOR` from the container. */
  readonly monitor?: HealthMonitor
  /**
   * Off by default. In `hold` mode, keeps the messages of an outage in a
   * durable spool on disk instead of at the broker: each is acknowledged once
   * it is on disk and replayed in arrival order when the dependencies are
   * healthy again (first thing after a restart, too). Needs `HealthModule`.
   * Turn it on when an outage can outlast what the brokers queue for the app
   * (Mosquitto: `max_queued_messages`, default 1000, per session).
   */
  readonly spool?: SpoolOptions
}

/** What a gate did since it was created. */
export interface HealthGateStats {
  /** Messages waiting now. */
  readonly held: number
  /** Messages that had to wait, ever. */
  readonly heldTotal: number
  /** Messages let through after waiting. */
  readonly released: number
  /** Handlers run again after they failed because a dependency went down under them. */
  readonly outageRetries: number
  readonly rejected: Readonly<Record<GateRejection, number>>
  /** The spool's figures; `undefined` without one. */
  readonly spool: SpoolStats | undefined
}

/** What `HealthModule` gives a gate at start. */
export interface GateAttachment {
  /** Hands a spooled message to the application's dispatcher again. */
  readonly replay: ReplayInto
  readonly logger: Logger
  /** Names the gate in errors, e.g. `healthGate on route "devices/{id}/telemetry"`. */
  readonly field: string
  /** Its spool's label on metrics and its check, unique in the application. Default: the dependencies, comma-separated. */
  readonly spoolLabel?: string
}

interface Held {
  /** Arrival order at the gate, kept when a message waits again after an outage. */
  readonly seq: number
  /** The dependencies must have passed a check started at or after this (epoch ms). */
  readonly since: number
  readonly release: () => void
  readonly reject: (error: Error) => void
}

/**
 * Creates the gate middleware for a route whose handler needs `dependencies`
 * (health check names, e.g. `'primary'`).
 *
 * @example
 * router.on('devices/{id}/telemetry', saveReading, { qos: 1, middleware: [healthGate('primary', { maxHoldMs: 30_000 })] })
 */
export function healthGate(dependencies: string | readonly string[], options: HealthGateOptions = {}): HealthGate {
  return new HealthGate(typeof dependencies === 'string' ? [dependencies] : dependencies, options)
}

/**
 * Holds or rejects a route's messages while a dependency is down, so that
 * they wait for it instead of failing. A held message stays unacknowledged:
 * the broker's in-flight window then slows delivery by itself, and what the
 * client does not take stays queued at the broker. In `hold` mode a handler
 * that fails with an error its dependency's check calls an outage (a write
 * meeting a primary that just died, before the probes noticed) is held too,
 * and run again once the dependency passed a check after that failure; so
 * handlers must be idempotent, as at-least-once delivery asks anyway.
 */
export class HealthGate implements Middleware {
  readonly dependencies: readonly string[]
  readonly mode: 'hold' | 'reject'
  readonly maxHeld: number
  readonly maxHoldMs: number
  #monitor: HealthMonitor | undefined
  readonly #spool: GateSpool | undefined
  readonly #queues = new Map<string, Held[]>()
  readonly #pumping = new Set<string>()
  /** Messages this gate is holding or running, by context. */
  readonly #attempts = new WeakMap<MessageContext, Promise<unknown>>()
  /** Per route: aborts the pump's wait when the head of the queue changed. */
  readonly #wake = new Map<string, AbortController>()
  #seq = 0
  #held = 0
  #heldTotal = 0
  #released = 0
  #outageRetries = 0
  readonly #rejected: Record<GateRejection, number> = { unhealthy: 0, 'max-held': 0, 'max-hold-ms': 0, stopped: 0, 'spool-full': 0 }

  constructor(dependencies: readonly string[], options: HealthGateOptions = {}) {
    if (!Array.isArray(dependencies) || dependencies.length === 0 || dependencies.some((d) => typeof d !== 'string' || d === '')) {
      throw new InvalidOptionError('healthGate.dependencies', "name one or more health checks, e.g. healthGate(['primary'])")
    }
    checkOptions(options, HEALTH_GATE_OPTIONS_SHAPE, 'healthGate')
    const { mode = 'hold', maxHeld = 1000, maxHoldMs = 60_000 } = options
    this.dependencies = Object.freeze([...(dependencies as readonly string[])])
    this.mode = mode
    this.maxHeld = maxHeld
    this.maxHoldMs = maxHoldMs
    this.#monitor = options.monitor
    if (options.spool && mode !== 'hold') throw new InvalidOptionError('healthGate.spool', "a spool keeps held messages: use it with mode 'hold'")
    this.#spool = options.spool ? new GateSpool(options.spool, this.dependencies) : undefined
  }

  /**
   * Sets the monitor when none was given, and opens the spool (replaying
   * what an earlier run left in it); `HealthModule` does this at start.
   */
  attach(monitor: HealthMonitor, attachment?: GateAttachment): void {
    this.#monitor ??= monitor
    if (this.#spool && attachment) {
      this.#spool.open({ monitor: this.#monitor, replay: attachment.replay, logger: attachment.logger, field: `${attachment.field}.spool`, label: attachment.spoolLabel })
    }
  }

  /** Ends the holds (`close`) and closes the spool; `HealthModule` calls it when the application stopped. */
  async stop(): Promise<void> {
    this.close()
    await this.#spool?.close()
  }

  get stats(): HealthGateStats {
    return Object.freeze({
      held: this.#held,
      heldTotal: this.#heldTotal,
      released: this.#released,
      outageRetries: this.#outageRetries,
      rejected: Object.freeze({ ...this.#rejected }),
      spool: this.#spool?.stats,
    })
  }

  /** The monitor given or attached, if any. */
  get monitor(): HealthMonitor | undefined {
    return this.#monitor
  }

  handle(ctx: MessageContext, next: Next): Promise<unknown> {
    // A middleware before the gate that retries (after its own timeout) while this message is still held
    // or running here joins that attempt: one message is held, parked and handled once.
    const pending = this.#attempts.get(ctx)
    if (pending) return pending
    // Registered before anything inside runs, so that the outermost gate owns the outcome: the message
    // settles by what the gate decides, even behind a middleware that did not await next(ctx).
    let settle!: { resolve: (value: unknown) => void; reject: (error: unknown) => void }
    const outcome = new Promise<unknown>((resolve, reject) => (settle = { resolve, reject }))
    trackOutcome(ctx, outcome, this)
    this.#attempts.set(ctx, outcome)
    this.#handle(ctx, next)
      .finally(() => this.#attempts.delete(ctx))
      .then(settle.resolve, settle.reject)
    return outcome
  }

  /**
   * Ends every hold with `DependencyUnavailableError` (`reason: 'stopped'`);
   * `HealthModule` calls it when the application stopped, whose dispatcher
   * then leaves those messages unacknowledged. Later messages are held again.
   */
  close(): void {
    for (const [route, queue] of this.#queues) {
      for (const entry of queue.splice(0)) {
        this.#rejected.stopped++
        entry.reject(new DependencyUnavailableError(route, this.dependencies, 'stopped', 'the application stopped while it was held'))
      }
      this.#wake.get(route)?.abort()
    }
  }

  async #handle(ctx: MessageContext, next: Next): Promise<unknown> {
    const monitor = this.#monitor ?? resolveMonitor(ctx)
    const route = ctx.route.pattern
    const seq = ++this.#seq
    const spool = this.#openSpool()
    if (spool) {
      return spool.pass(ctx, next, monitor, {
        outageRetry: () => void this.#outageRetries++,
        full: () => this.#reject(route, 'spool-full', `the spool is full (${spool.stats.bytes} of ${spool.options.maxBytes} bytes) while ${this.#describe(monitor)}`),
      })
    }
    let since = 0
    let deadline: number | undefined
    let released = false
    for (;;) {
      if (released || (!this.#queues.get(route)?.length && monitor.isHealthy(this.dependencies, since))) {
        try {
          return await runToHandler(ctx, next)
        } catch (error) {
          if (this.mode !== 'hold' || !this.dependencies.some((name) => monitor.isOutage(name, error))) throw error
          // Before the probes noticed: hold it until a check that started after this failure passes.
          since = preciseNow()
          this.#outageRetries++
        }
      } else if (this.mode === 'reject') {
        throw this.#reject(route, 'unhealthy', `${this.#describe(monitor)}`)
      }
      deadline ??= Date.now() + this.maxHoldMs
      await this.#hold(ctx, monitor, route, seq, since, deadline)
      released = true
    }
  }

  /** The spool, when one is configured; a gate with one must have been attached by `HealthModule`. */
  #openSpool(): GateSpool | undefined {
    if (!this.#spool) return undefined
    if (!this.#spool.isOpen) {
      throw new InvalidOptionError('healthGate.spool', 'the spool opens when HealthModule starts: add HealthModule (or LoadBalancingModule) to the application')
    }
    return this.#spool
  }

  #hold(ctx: MessageContext, monitor: HealthMonitor, route: string, seq: number, since: number, deadline: number): Promise<void> {
    if (this.#held >= this.maxHeld) {
      return Promise.reject(this.#reject(route, 'max-held', `${this.maxHeld} messages are held already while ${this.#describe(monitor)}`))
    }
    return new Promise<void>((resolve, reject) => {
      let queue = this.#queues.get(route)
      if (!queue) this.#queues.set(route, (queue = []))
      // eslint-disable-next-line prefer-const -- `end` below reads it, and may run before it is assigned
      let unpark: (() => void) | undefined
      let ended = false
      const end = (): void => {
        clearTimeout(timer)
        this.#held--
        ended = true
        unpark?.()
      }
      const entry: Held = {
        seq,
        since,
        release: () => {
          end()
          this.#released++
          resolve()
        },
        reject: (error) => {
          end()
          reject(error)
        },
      }
      const timer = setTimeout(() => {
        const at = queue.indexOf(entry)
        if (at >= 0) queue.splice(at, 1)
        entry.reject(this.#reject(route, 'max-hold-ms', `it was held ${this.maxHoldMs} ms while ${this.#describe(monitor)}`))
        // The head may have gone: whoever is next must not wait on its condition.
        if (at === 0) this.#wake.get(route)?.abort()
      }, Math.max(0, deadline - Date.now()))
      // A held message must not keep a stopped application's process alive.
      timer.unref()
      // Arrival order: a message held again after an outage goes back to its place.
      let at = queue.length
      while (at > 0 && queue[at - 1]!.seq > seq) at--
      queue.splice(at, 0, entry)
      this.#held++
      this.#heldTotal++
      if (at === 0) this.#wake.get(route)?.abort()
      void this.#pump(monitor, route, queue)
      // Last: giving the slot back may run other messages at once, which must find this one queued and counted.
      unpark = parkMessage(ctx)
      // One of them may already have ended this hold (closing the gate): take the slot back now.
      if (ended) unpark()
    })
  }

  /** One loop per route: waits until the head of the queue may go, then lets everything that may go, in order. */
  async #pump(monitor: HealthMonitor, route: string, queue: Held[]): Promise<void> {
    if (this.#pumping.has(route)) return
    this.#pumping.add(route)
    try {
      while (queue.length > 0) {
        const wake = new AbortController()
        this.#wake.set(route, wake)
        const ready = await monitor.whenHealthy(this.dependencies, queue[0]!.since, wake.signal).then(() => true, () => false)
        this.#wake.delete(route)
        if (!ready && !wake.signal.aborted) return // the monitor stopped; close() ends the holds
        if (!ready) continue
        while (queue.length > 0 && monitor.isHealthy(this.dependencies, queue[0]!.since)) queue.shift()!.release()
      }
    } finally {
      this.#pumping.delete(route)
      if (queue.length === 0 && this.#queues.get(route) === queue) this.#queues.delete(route)
    }
  }

  #reject(route: string, reason: GateRejection, detail: string): DependencyUnavailableError {
    this.#rejected[reason]++
    return new DependencyUnavailableError(route, this.dependencies, reason, detail)
  }

  #describe(monitor: HealthMonitor): string {
    const down = this.dependencies.filter((name) => monitor.state(name) !== 'healthy')
    if (down.length === 0) return `${this.dependencies.join(', ')} had not yet passed a check after an outage`
    return down
      .map((name) => {
        const status = monitor.status(name)
        if (!status) return `${name} is not a registered health check`
        return `${name} is ${status.state}${status.lastError ? ` (${status.lastError})` : ''}`
      })
      .join('; ')
  }
}

function resolveMonitor(ctx: MessageContext): HealthMonitor {
  if (ctx.container.isRegistered(HEALTH_MONITOR, true)) return ctx.container.resolve<HealthMonitor>(HEALTH_MONITOR)
  throw new InvalidOptionError('healthGate.monitor', 'no HealthMonitor: add HealthModule to the application, or pass { monitor }')
}
