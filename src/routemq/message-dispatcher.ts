import type { DependencyContainer } from './container.js'
import { MAX_LOGGED_FIELD_CHARS, safeLogger, type Logger } from './logger.js'
import { MessageContext, type Publish } from './message-context.js'
import { runInMessageScope } from './message-scope.js'
import type { InboundMessage } from './mqtt-transport.js'
import { decodePayload } from './payload.js'
import type { ErrorPolicy, Route } from './route.js'
import type { RouteMatch, Router } from './router.js'
import { handlerSettled } from './handler-completion.js'
import type { ParkingLot } from './message-parking.js'
import { deadLetterFor, isPermanentPublishFailure } from './dead-letter.js'
import { SummarisedWarning } from './summarised-warning.js'
import { isUnresolvableDependencyError } from './errors/unresolvable-dependency-error.js'
import { MessageTrace } from './tracing.js'

/** How messages of one topic relate to each other while being handled. */
export type MessageOrdering = 'topic' | 'none'

/** Options of `MessageDispatcher`. */
export interface MessageDispatcherOptions {
  readonly router: Router
  readonly container: DependencyContainer
  readonly publish: Publish
  readonly logger: Logger
  /** Default policy for failed messages; a route's `onError` overrides it. */
  readonly onError: ErrorPolicy
  /** Handlers running at once; further messages wait in arrival order. */
  readonly maxInFlight: number
  /**
   * Accepted messages (running or waiting) above which QoS 0 messages are
   * dropped and counted. QoS 1 and 2 are never dropped: the broker's in-flight
   * window already bounds them.
   */
  readonly maxQueued: number
  /** `'topic'`: one message per topic at a time, in arrival order; `'none'`: no per-topic order. */
  readonly ordering: MessageOrdering
  /**
   * Whether the transport's session outlives this connection (it is
   * persistent): then a message whose handler cannot build its class is
   * withheld under `'ack'`, for the fixed deployment. Default: not.
   */
  readonly keepsSession?: () => boolean
}

/** Counters of everything the dispatcher did since it was created. */
export interface DispatchStats {
  readonly received: number
  /** Handler settled successfully. */
  readonly handled: number
  /** Middleware or handler threw or rejected. */
  readonly failed: number
  /** No route matched the topic; acknowledged and dropped. */
  readonly unmatched: number
  /** Body was not JSON on a JSON route. */
  readonly malformed: number
  /** Arrived after `refuse()`; left unacknowledged. */
  readonly refused: number
  /** Republished to a dead-letter topic. */
  readonly deadLettered: number
  /**
   * Failed, and the broker refused its dead letter for good (not authorized,
   * packet too large): acknowledged, so that it does not hold one of the
   * broker's in-flight slots for ever, and logged at ERROR.
   */
  readonly deadLetterRefused: number
  /** Left unacknowledged by the `'redeliver'` policy. */
  readonly withheld: number
  /** QoS 0 messages dropped because `maxQueued` messages were waiting. */
  readonly dropped: number
  /** A second copy of a message that overlapping subscriptions delivered; acknowledged, not handled. */
  readonly duplicateCopies: number
  /** Accepted and not yet settled (running or waiting). */
  readonly inFlight: number
}

/** What `drain` observed when it returned. */
export interface DrainResult {
  /** True when every accepted message settled in time. */
  readonly drained: boolean
  /** Messages still running or waiting when the time ran out. */
  readonly abandoned: number
}

type Counter = Exclude<keyof DispatchStats, 'inFlight'>

interface Pending {
  readonly message: InboundMessage
  readonly match: RouteMatch
  /** Taken its place in its topic's order (ordering 'topic'); a replay keeps its own order. */
  readonly ordered: boolean
}

const UNMATCHED_LOG_LIMIT = 256
/** A QoS 0 flood is logged once, then once per this interval with a count. */
const DROP_LOG_INTERVAL_MS = 10_000

/**
 * Takes messages from the transport and walks each through its route: trie
 * match, payload decoding, middleware, handler, then settles it (acknowledge
 * or not) by the outcome and the error policy. Nothing is acknowledged before
 * its handler settled, and every accepted message is settled exactly once.
 *
 * @example
 * const dispatcher = new MessageDispatcher({ router, container, publish, logger, onError: 'ack', maxInFlight: 256, maxQueued: 10_000, ordering: 'topic' })
 * await transport.connect(dispatcher.receive)
 */
export class MessageDispatcher {
  readonly #options: MessageDispatcherOptions
  readonly #log: Logger
  readonly #counts: Record<Counter, number> = {
    received: 0, handled: 0, failed: 0, unmatched: 0, malformed: 0, refused: 0, deadLettered: 0, deadLetterRefused: 0,
    withheld: 0, dropped: 0, duplicateCopies: 0,
  }
  /** Per topic: the messages waiting behind the one being handled (ordering 'topic'). */
  readonly #topics = new Map<string, Pending[]>()
  /** Messages free to run, waiting for a handler slot. */
  #ready: Pending[] = []
  readonly #unmatchedLogged = new Set<string>()
  readonly #dropWarning: SummarisedWarning
  /** A dependency down fails every message of a route the same way: one ERROR per route, error and episode. */
  readonly #handlerFailed: SummarisedWarning
  readonly #malformed: SummarisedWarning
  readonly #deadLetterFailed: SummarisedWarning
  #accepted = 0
  #running = 0
  #refusing = false
  /** Raised by abandon(): messages accepted before it settle unacknowledged, whatever their outcome. */
  #generation = 0
  /** Messages waiting outside (a health gate) give their handler slot back meanwhile. */
  readonly #lot: ParkingLot = {
    park: () => {
      this.#running--
      this.#startReady()
    },
    unpark: () => {
      this.#running++
    },
  }
  /** True while #startReady runs: a message that parks at once must not start the next from inside its own frame. */
  #starting = false
  #idle: (() => void)[] = []

  constructor(options: MessageDispatcherOptions) {
    this.#options = Object.freeze({ ...options })
    this.#log = safeLogger(options.logger)
    this.#dropWarning = new SummarisedWarning(this.#log, 'QoS 0 message dropped: too many messages waiting', { intervalMs: DROP_LOG_INTERVAL_MS })
    this.#handlerFailed = new SummarisedWarning(this.#log, 'handler failed', { level: 'error' })
    this.#malformed = new SummarisedWarning(this.#log, 'message dropped: malformed payload')
    this.#deadLetterFailed = new SummarisedWarning(this.#log, 'dead-letter publish failed; message left unacknowledged', { level: 'error' })
  }

  /** The `MessageReceiver` to give the transport. Never throws. */
  readonly receive = (message: InboundMessage): void => this.#receive(message, false)

  /**
   * Takes a message a durable store replays (a health gate's spool), outside
   * the per-topic order: the store hands over one message per topic at a
   * time itself, and a newer message of the topic may be waiting at the gate
   * for the replay to make room. Never dropped, even a QoS 0 one past
   * `maxQueued`: it is settled like every message. Never throws.
   */
  readonly replay = (message: InboundMessage): void => this.#receive(message, true)

  #receive(message: InboundMessage, replayed: boolean): void {
    this.#counts.received++
    if (this.#refusing) {
      this.#counts.refused++
      message.settle(false)
      return
    }
    const match = this.#options.router.match(message.topic)
    if (!match) return this.#unmatched(message)
    if (isOverlapCopy(message, match.route)) {
      // Overlapping routes each hold a subscription, so the broker sends a copy
      // per subscription; only the copy for the most specific route is handled.
      this.#counts.duplicateCopies++
      return message.settle(true)
    }
    // A replay is on disk already, and its store counts on every one settling: never dropped.
    if (message.qos === 0 && !replayed && this.#accepted >= this.#options.maxQueued) {
      this.#counts.dropped++
      this.#dropWarning.record({ topic: message.topic, waiting: this.#accepted })
      return
    }
    this.#accepted++
    const ordered = !replayed && this.#options.ordering === 'topic'
    const pending: Pending = { message, match, ordered }
    if (ordered) {
      const waiting = this.#topics.get(message.topic)
      if (waiting) {
        waiting.push(pending)
        return
      }
      this.#topics.set(message.topic, [])
    }
    this.#schedule(pending)
  }

  /** From now on, leave new messages unacknowledged instead of handling them. */
  refuse(): void {
    this.#refusing = true
  }

  /** Takes messages again after `refuse()` (a failed start being retried). */
  accept(): void {
    this.#refusing = false
  }

  /**
   * After a drain that timed out: the messages accepted so far settle
   * unacknowledged, whatever their outcome (the transport is closing; a
   * persistent session gets them again). Messages accepted afterwards (a
   * retried start) are not affected.
   */
  abandon(): void {
    this.#generation++
    // Waiting messages must never start: their handler would run against a closed transport.
    const heads = this.#ready
    this.#ready = []
    const behind = [...this.#topics.values()].flatMap((queue) => queue.splice(0))
    // A ready message heads its topic (ordering 'topic'); with it gone, nothing of that topic runs.
    for (const { message, ordered } of heads) if (ordered) this.#topics.delete(message.topic)
    for (const { message } of [...heads, ...behind]) {
      this.#accepted--
      this.#settleQuietly(message, false)
    }
    this.#wakeIfIdle()
  }

  /** Waits until every accepted message settled, or `timeoutMs` passed. */
  /** Reports what the summarised log lines counted and not yet said (on stop: their timers do not hold the process). */
  flushLogs(): void {
    for (const summary of [this.#dropWarning, this.#handlerFailed, this.#malformed, this.#deadLetterFailed]) summary.endAll()
  }

  drain(timeoutMs: number): Promise<DrainResult> {
    if (this.#accepted === 0) return Promise.resolve({ drained: true, abandoned: 0 })
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        resolve({ drained: true, abandoned: 0 })
      }
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((wake) => wake !== done)
        resolve({ drained: false, abandoned: this.#accepted })
      }, Math.max(0, timeoutMs))
      this.#idle.push(done)
    })
  }

  get stats(): DispatchStats {
    return Object.freeze({ ...this.#counts, inFlight: this.#accepted })
  }

  #schedule(pending: Pending): void {
    if (this.#running < this.#options.maxInFlight) {
      this.#running++
      void this.#run(pending)
    } else {
      this.#ready.push(pending)
    }
  }

  async #run({ message, match, ordered }: Pending): Promise<void> {
    let settled = false
    const generation = this.#generation
    const settle = (acknowledge: boolean): void => {
      if (settled) return
      settled = true
      message.settle(acknowledge && generation === this.#generation)
    }
    const trace = new MessageTrace(message, match.route)
    try {
      // Not wrapped in another async function: a tick more before #finished would show in stats.inFlight.
      await trace.run(() => this.#handle(message, match, settle, generation, trace))
    } catch (error) {
      this.#log.error('message handling failed unexpectedly; left unacknowledged', { topic: message.topic, error })
    } finally {
      if (!settled) {
        settled = true
        this.#settleQuietly(message, false)
      }
      this.#finished(message.topic, ordered)
      trace.end()
    }
  }

  #finished(topic: string, ordered: boolean): void {
    this.#running--
    this.#accepted--
    if (ordered) {
      const waiting = this.#topics.get(topic)
      const next = waiting?.shift()
      if (next) this.#ready.push(next)
      else this.#topics.delete(topic)
    }
    this.#startReady()
    this.#wakeIfIdle()
  }

  #wakeIfIdle(): void {
    if (this.#accepted > 0 || this.#idle.length === 0) return
    const idle = this.#idle
    this.#idle = []
    for (const wake of idle) wake()
  }

  #settleQuietly(message: InboundMessage, acknowledge: boolean): void {
    try {
      message.settle(acknowledge)
    } catch (error) {
      this.#log.error('transport failed to settle a message', { topic: message.topic, error })
    }
  }

  #startReady(): void {
    // Not re-entered: a burst of messages that each park at once would otherwise nest one stack frame per message.
    if (this.#starting) return
    this.#starting = true
    try {
      while (this.#running < this.#options.maxInFlight && this.#ready.length > 0) {
        this.#running++
        void this.#run(this.#ready.shift()!)
      }
    } finally {
      this.#starting = false
    }
  }

  async #handle(message: InboundMessage, match: RouteMatch, settle: (acknowledge: boolean) => void, generation: number, trace: MessageTrace): Promise<void> {
    const { route } = match
    const policy = route.onError ?? this.#options.onError
    let ctx: MessageContext
    try {
      ctx = new MessageContext({
        topic: message.topic,
        params: match.params,
        payload: decodePayload(message.topic, message.payload, route.payload, message.properties?.contentType),
        raw: message.payload,
        qos: message.qos,
        retain: message.retain,
        dup: message.dup,
        properties: message.properties,
        broker: message.broker,
        route,
        container: this.#options.container,
        publish: this.#options.publish,
        parking: this.#lot,
      })
    } catch (error) {
      this.#counts.malformed++
      trace.failed(error)
      this.#malformed.record({ topic: message.topic, route: route.pattern, error }, route.pattern)
      // A body that failed to parse fails the same way on every redelivery, so it is never redelivered.
      return this.#settleFailed(message, typeof policy === 'object' ? policy : 'ack', settle)
    }
    try {
      await runInMessageScope(ctx, () => route.run(ctx))
      // A middleware that called next(ctx) without awaiting it must not get the message acknowledged early.
      const handler = handlerSettled(ctx)
      if (handler) await handler
    } catch (error) {
      // A middleware that failed (a timeout racing next(ctx)) while the handler, or a gate holding
      // the message, is still at work: settling now would acknowledge a message nothing handled yet.
      await handlerSettled(ctx)?.catch(noop)
      // Abandoned by stop(): no error policy (no dead letter, no acknowledgement); it stays for redelivery.
      if (generation !== this.#generation) return settle(false)
      this.#counts.failed++
      trace.failed(error)
      this.#handlerFailed.record({ topic: message.topic, route: route.name ?? route.pattern, error }, `${route.pattern}\u0000${errorKind(error)}`)
      return this.#settleFailed(message, policy, settle, error)
    }
    this.#counts.handled++
    settle(true)
  }

  async #settleFailed(message: InboundMessage, policy: ErrorPolicy, settle: (acknowledge: boolean) => void, error?: unknown): Promise<void> {
    // A class the container cannot build fails every message alike until the code is fixed: kept for the
    // fixed deployment when the session outlives this connection. With a clean session a withheld message
    // is lost all the same at the next connect, holding one of the broker's in-flight slots meanwhile.
    if (policy === 'ack' && isUnresolvableDependencyError(error) && this.#options.keepsSession?.() === true) policy = 'redeliver'
    if (policy === 'ack') return settle(true)
    if (policy === 'redeliver') {
      this.#counts.withheld++
      return settle(false)
    }
    if (message.topic === policy.deadLetter || message.topic.startsWith(`${policy.deadLetter}/`)) {
      // A dead letter that fails again would be dead-lettered forever, one level deeper each time.
      this.#log.error('dead letter failed again; acknowledged without republishing', { topic: message.topic })
      return settle(true)
    }
    const deadLetter = deadLetterFor(policy.deadLetter, message.topic)
    try {
      await this.#options.publish(deadLetter.topic, message.payload, deadLetter.options)
    } catch (error) {
      if (isPermanentPublishFailure(error)) {
        // Withheld, it would come back on every resumed session and, a few of
        // its kind, fill the broker's in-flight window so that nothing else is
        // delivered: a poison message ends here, acknowledged.
        this.#counts.deadLetterRefused++
        this.#log.error('dead letter refused for good; message acknowledged without it', { topic: message.topic, deadLetter: deadLetter.topic, bytes: message.payload.length, error })
        return settle(true)
      }
      // The connection is failing: the session delivers it again once it resumes.
      this.#deadLetterFailed.record({ topic: message.topic, deadLetter: deadLetter.topic, error })
      return settle(false)
    }
    this.#counts.deadLettered++
    settle(true)
  }

  #unmatched(message: InboundMessage): void {
    this.#counts.unmatched++
    // Remembered by their start only: 256 topics of 64 KB each would pin 16 MB for a log filter.
    const seen = message.topic.slice(0, MAX_LOGGED_FIELD_CHARS)
    if (this.#unmatchedLogged.size < UNMATCHED_LOG_LIMIT && !this.#unmatchedLogged.has(seen)) {
      this.#unmatchedLogged.add(seen)
      this.#log.warn('no route matches topic; message acknowledged and dropped', { topic: message.topic })
    } else {
      this.#log.debug('no route matches topic', { topic: message.topic })
    }
    // Leaving it unacknowledged would only hold one of the broker's in-flight slots forever.
    message.settle(true)
  }
}

function noop(): void {}

/** True when the message carries subscription identifiers and none is its matched route's. */
function isOverlapCopy(message: InboundMessage, route: Route): boolean {
  const ids = message.properties?.subscriptionIdentifier
  if (ids === undefined) return false
  return typeof ids === 'number' ? ids !== route.identifier : !ids.includes(route.identifier)
}

/** What tells one failure of a route from another: its error class and code. */
function errorKind(error: unknown): string {
  if (!(error instanceof Error)) return typeof error
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' || typeof code === 'number' ? `${error.name}:${code}` : error.name
}
