import type { DependencyContainer } from './container.js'
import type { Logger } from './logger.js'
import { MessageContext, type Publish } from './message-context.js'
import { runInMessageScope } from './message-scope.js'
import type { InboundMessage } from './mqtt-transport.js'
import { decodePayload } from './payload.js'
import type { ErrorPolicy } from './route.js'
import type { RouteMatch, Router } from './router.js'

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
  /** Messages accepted but not yet settled before the transport is asked to stop reading. */
  readonly maxInFlight: number
  /** `'topic'`: one message per topic at a time, in arrival order; `'none'`: all concurrently. */
  readonly ordering: MessageOrdering
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
  /** Accepted and not yet settled (running or queued behind its topic). */
  readonly inFlight: number
}

/** What `drain` observed when it returned. */
export interface DrainResult {
  /** True when every accepted message settled in time. */
  readonly drained: boolean
  /** Messages still running when the time ran out. */
  readonly abandoned: number
}

type Counter = Exclude<keyof DispatchStats, 'inFlight'>
type Pending = readonly [InboundMessage, RouteMatch]

const UNMATCHED_LOG_LIMIT = 256

/**
 * Takes messages from the transport and walks each through its route: trie
 * match, payload decoding, middleware, handler, then settles it (acknowledge
 * or not) by the outcome and the error policy. Nothing is acknowledged before
 * its handler settled.
 *
 * @example
 * const dispatcher = new MessageDispatcher({ router, container, publish, logger, onError: 'ack', maxInFlight: 256, ordering: 'topic' })
 * await transport.connect(dispatcher.receive)
 */
export class MessageDispatcher {
  readonly #options: MessageDispatcherOptions
  readonly #counts: Record<Counter, number> = {
    received: 0, handled: 0, failed: 0, unmatched: 0, malformed: 0, refused: 0, deadLettered: 0,
  }
  readonly #queues = new Map<string, Pending[]>()
  readonly #unmatchedLogged = new Set<string>()
  #inFlight = 0
  #refusing = false
  #readers: (() => void)[] = []
  #idle: (() => void)[] = []

  constructor(options: MessageDispatcherOptions) {
    this.#options = Object.freeze({ ...options })
  }

  /** The `MessageReceiver` to give the transport. */
  readonly receive = (message: InboundMessage): void | Promise<void> => {
    this.#counts.received++
    if (this.#refusing) {
      this.#counts.refused++
      message.settle(false)
      return undefined
    }
    const match = this.#options.router.match(message.topic)
    if (!match) {
      this.#unmatched(message)
      return undefined
    }
    this.#inFlight++
    if (this.#options.ordering === 'topic') {
      const queue = this.#queues.get(message.topic)
      if (queue) {
        queue.push([message, match])
        return this.#backPressure()
      }
      this.#queues.set(message.topic, [])
    }
    void this.#run(message, match)
    return this.#backPressure()
  }

  /** From now on, leave new messages unacknowledged instead of handling them. */
  refuse(): void {
    this.#refusing = true
  }

  /** Waits until every accepted message settled, or `timeoutMs` passed. */
  drain(timeoutMs: number): Promise<DrainResult> {
    if (this.#inFlight === 0) return Promise.resolve({ drained: true, abandoned: 0 })
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = this.#idle.filter((wake) => wake !== done)
        resolve({ drained: false, abandoned: this.#inFlight })
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve({ drained: true, abandoned: 0 })
      }
      this.#idle.push(done)
    })
  }

  get stats(): DispatchStats {
    return Object.freeze({ ...this.#counts, inFlight: this.#inFlight })
  }

  #backPressure(): Promise<void> | undefined {
    if (this.#inFlight < this.#options.maxInFlight) return undefined
    return new Promise((resolve) => this.#readers.push(resolve))
  }

  async #run(message: InboundMessage, match: RouteMatch): Promise<void> {
    try {
      await this.#handle(message, match)
    } finally {
      this.#inFlight--
      if (this.#readers.length > 0 && this.#inFlight < this.#options.maxInFlight) {
        const readers = this.#readers
        this.#readers = []
        for (const wake of readers) wake()
      }
      if (this.#options.ordering === 'topic') this.#next(message.topic)
      if (this.#inFlight === 0 && this.#idle.length > 0) {
        const idle = this.#idle
        this.#idle = []
        for (const wake of idle) wake()
      }
    }
  }

  #next(topic: string): void {
    const queue = this.#queues.get(topic)
    const pending = queue?.shift()
    if (pending) void this.#run(pending[0], pending[1])
    else this.#queues.delete(topic)
  }

  async #handle(message: InboundMessage, match: RouteMatch): Promise<void> {
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
      })
    } catch (error) {
      this.#counts.malformed++
      this.#options.logger.warn('message dropped: malformed payload', { topic: message.topic, route: route.pattern, error })
      // A body that failed to parse fails the same way on every redelivery, so it is never redelivered.
      await this.#settleFailed(message, typeof policy === 'object' ? policy : 'ack', error)
      return
    }
    try {
      await runInMessageScope(ctx, () => route.run(ctx))
    } catch (error) {
      this.#counts.failed++
      this.#options.logger.error('handler failed', { topic: message.topic, route: route.name ?? route.pattern, error })
      await this.#settleFailed(message, policy, error)
      return
    }
    this.#counts.handled++
    message.settle(true)
  }

  async #settleFailed(message: InboundMessage, policy: ErrorPolicy, error: unknown): Promise<void> {
    if (policy === 'ack') return message.settle(true)
    if (policy === 'redeliver') return message.settle(false)
    const topic = `${policy.deadLetter}/${message.topic}`
    try {
      await this.#options.publish(topic, message.payload, { qos: 1 })
    } catch (publishError) {
      this.#options.logger.error('dead-letter publish failed; message left unacknowledged', {
        topic: message.topic, deadLetter: topic, error: publishError, cause: error,
      })
      return message.settle(false)
    }
    this.#counts.deadLettered++
    message.settle(true)
  }

  #unmatched(message: InboundMessage): void {
    this.#counts.unmatched++
    const log = this.#options.logger
    if (this.#unmatchedLogged.size < UNMATCHED_LOG_LIMIT && !this.#unmatchedLogged.has(message.topic)) {
      this.#unmatchedLogged.add(message.topic)
      log.warn('no route matches topic; message acknowledged and dropped', { topic: message.topic })
    } else {
      log.debug('no route matches topic', { topic: message.topic })
    }
    // Leaving it unacknowledged would only hold one of the broker's in-flight slots forever.
    message.settle(true)
  }
}
