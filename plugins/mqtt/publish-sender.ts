import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { PublishOptions } from '../../src/routemq/plugin-api.js'
import { SummarisedWarning } from '../../src/routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { RequestObserved } from '../../src/metrics/measured-pool.js'
import type { BrokerConnection } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { EffectiveBrokerPoolMode, ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { PublishAbandonedError } from './errors/publish-abandoned-error.js'
import { PublishDroppedError } from './errors/publish-dropped-error.js'
import { Qos2InterruptedError } from './errors/qos2-interrupted-error.js'
import type { HoldDown } from './hold-down.js'
import type { LiveConnections } from './live-connections.js'
import { outgoing, PublishQueue, type OutgoingPublish } from './publish-queue.js'

/** Losses in a row with the same publish in flight before it is abandoned. */
const ABANDON_AFTER_LOSSES = 3

/** What the sender counts, for the pool's stats. */
export interface PublishCounts {
  published: number
  acknowledged: number
  resent: number
  droppedQos0: number
  rejectedBufferFull: number
  qos2Interrupted: number
  abandoned: number
}

/** Options of `PublishSender`. */
export interface PublishSenderOptions {
  readonly options: ResolvedBrokerPoolOptions
  readonly set: BackendSet<BrokerEndpoint>
  readonly live: LiveConnections
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly log: Logger
  /** The mode the pool runs in (known once the brokers were checked). */
  readonly mode: () => EffectiveBrokerPoolMode
  /** A timely acknowledgement from a broker: its late streak ends. */
  readonly onTimelyAck: (backend: Backend<BrokerEndpoint>) => void
  readonly onListenerError: (error: unknown) => void
}

interface Target {
  readonly backend: Backend<BrokerEndpoint>
  readonly connection: BrokerConnection
}

/**
 * Every publish the pool has taken, from `publish()` to the broker's
 * acknowledgement: sent at once when a connection takes it, else kept in
 * order (within the offline buffer's bounds) and sent when one does; taken
 * back and resent in order when its connection is lost; given up when it was
 * in flight at three losses in a row, or (QoS 2) at any loss.
 *
 * @example
 * await sender.publish('devices/7/config', '{"on":true}', { qos: 1 })
 * sender.flush()                       // a connection came up
 * sender.takeBack(backend, connection) // it was lost
 */
export class PublishSender {
  readonly counts: PublishCounts = { published: 0, acknowledged: 0, resent: 0, droppedQos0: 0, rejectedBufferFull: 0, qos2Interrupted: 0, abandoned: 0 }
  readonly queue: PublishQueue
  readonly #options: ResolvedBrokerPoolOptions
  readonly #set: BackendSet<BrokerEndpoint>
  readonly #live: LiveConnections
  /** Connections dropping under a burst abandon many publishes at once: one line per episode. */
  readonly #abandoned: SummarisedWarning
  readonly #mode: () => EffectiveBrokerPoolMode
  readonly #onTimelyAck: PublishSenderOptions['onTimelyAck']
  readonly #requests: TypedEvent<RequestObserved>

  constructor(options: PublishSenderOptions) {
    this.#options = options.options
    this.#set = options.set
    this.#live = options.live
    this.#abandoned = new SummarisedWarning(options.log, 'publish abandoned: connections kept dropping while it was in flight', { level: 'error' })
    this.#mode = options.mode
    this.#onTimelyAck = options.onTimelyAck
    this.queue = new PublishQueue(options.options.offlineBuffer)
    this.#requests = new TypedEvent(options.onListenerError)
  }

  /** Each publish as a broker acknowledged it (QoS 0: wrote it) or its connection failed under it. */
  onRequest(listener: (request: RequestObserved) => void): Disposer {
    return this.#requests.on(listener)
  }

  publish(topic: string, body: string | Buffer, options: PublishOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      // A publish never overtakes one still waiting for a broker.
      const target = this.queue.pendingCount === 0 ? this.#writable(options.via) : undefined
      if (!target && (options.qos ?? 0) === 0 && this.#options.offlineBuffer.qos0 === 'drop') {
        this.counts.droppedQos0++
        reject(new PublishDroppedError(topic))
        return
      }
      const entry = outgoing(topic, body, options, resolve, reject)
      try {
        this.queue.add(entry)
      } catch (error) {
        this.counts.rejectedBufferFull++
        reject(error)
        return
      }
      this.counts.published++
      if (target) this.#send(entry, target)
    })
  }

  /** Sends every waiting publish, oldest first, while a connection takes them. */
  /** Reports what the summarised abandoned publishes counted and not yet said (on close). */
  flushLogs(): void {
    this.#abandoned.endAll()
  }

  flush(): void {
    if (this.queue.pendingCount === 0) return
    for (const entry of this.queue.pending()) {
      const target = this.#writable(entry.options.via)
      if (!target) return
      this.#send(entry, target)
    }
  }

  /** Takes back what a finished connection had in flight: resent later, except QoS 2 and repeat offenders. */
  takeBack(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    for (const entry of this.queue.inflightOn(connection)) {
      if ((entry.options.qos ?? 0) === 2) {
        this.queue.remove(entry)
        this.counts.qos2Interrupted++
        entry.reject(new Qos2InterruptedError(entry.topic, backend.id))
      } else if (++entry.losses >= ABANDON_AFTER_LOSSES) {
        this.queue.remove(entry)
        this.counts.abandoned++
        this.#abandoned.record({ topic: entry.topic, losses: entry.losses })
        entry.reject(new PublishAbandonedError(entry.topic, entry.losses))
      } else {
        this.queue.markPending(entry)
      }
    }
  }

  /** Rejects everything still taken with `error` (the pool closed). */
  rejectAll(error: () => Error): void {
    for (const entry of this.queue.all()) {
      this.queue.remove(entry)
      entry.reject(error())
    }
  }

  #writable(via: string | undefined): Target | undefined {
    if (this.#live.size === 0) return undefined
    if (this.#mode() === 'failover') {
      for (const [backend, connection] of this.#live.entries()) if (connection.open) return { backend, connection }
      return undefined
    }
    if (via !== undefined) {
      for (const [backend, connection] of this.#live.entries()) if (backend.id === via && connection.open) return { backend, connection }
    }
    const unconnected = new Set(this.#set.backends.filter((b) => !this.#live.get(b)?.open))
    const region = this.#options.region
    const backend = this.#set.pick({ exclude: unconnected, prefer: region === undefined ? undefined : (b) => b.region === region })
    const connection = backend && this.#live.get(backend)
    return backend && connection ? { backend, connection } : undefined
  }

  #send(entry: OutgoingPublish, { backend, connection }: Target): void {
    const sentAt = Date.now()
    const attempt = this.queue.markSent(entry, connection, backend.begin(), sentAt)
    if (attempt > 1) this.counts.resent++
    connection.publish(entry.topic, entry.payload, entry.options, (error) => {
      if (entry.attempt !== attempt || entry.connection !== connection || !this.queue.has(entry)) return
      if (error) {
        if (this.#requests.listenerCount > 0) this.#requests.emit({ backend: backend.id, durationMs: Date.now() - sentAt, failed: true })
        // A lost connection's publishes are taken back and resent; any other error is the caller's.
        if (!connection.open) return
        this.queue.remove(entry)
        entry.reject(error)
        return
      }
      if ((entry.options.qos ?? 0) > 0) {
        const ackMs = Date.now() - sentAt
        // Only a timely acknowledgement clears a late streak; a broker that is always late stays late.
        if (ackMs <= this.#options.health.publishAckTimeoutMs) this.#onTimelyAck(backend)
        this.#set.reportSuccess(backend, ackMs)
      }
      this.queue.remove(entry)
      this.counts.acknowledged++
      if (this.#requests.listenerCount > 0) this.#requests.emit({ backend: backend.id, durationMs: Date.now() - sentAt, failed: false })
      entry.resolve()
    })
  }
}
