import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { BrokerConnection } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { HoldDown } from './hold-down.js'
import type { LiveConnections } from './live-connections.js'
import type { PublishQueue } from './publish-queue.js'

/** Options of `AckWatch`. */
export interface AckWatchOptions {
  readonly queue: PublishQueue
  readonly live: LiveConnections
  readonly set: BackendSet<BrokerEndpoint>
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly log: Logger
  readonly publishAckTimeoutMs: number
  /** Late sweeps in a row that take a broker out. */
  readonly fall: number
}

/**
 * Watches the acknowledgements of publishes in flight: a broker that keeps
 * QoS ≥ 1 publishes unacknowledged past `publishAckTimeoutMs` in `fall`
 * sweeps in a row is held out and marked down, whatever its probes say; a
 * first late sweep counts as a failure.
 *
 * @example
 * const watch = new AckWatch({ queue, live, set, holdDown, log, publishAckTimeoutMs: 3000, fall: 2 })
 * watch.start(); ...; watch.stop()
 */
export class AckWatch {
  readonly #options: AckWatchOptions
  readonly #streaks = new Map<Backend<BrokerEndpoint>, number>()
  #timer: NodeJS.Timeout | undefined
  #timeouts = 0

  constructor(options: AckWatchOptions) {
    this.#options = options
  }

  /** Sweeps in which a broker had a publish past the timeout. */
  get timeouts(): number {
    return this.#timeouts
  }

  start(): void {
    const every = Math.max(50, Math.floor(this.#options.publishAckTimeoutMs / 3))
    this.#timer = setInterval(() => this.sweep(), every)
  }

  stop(): void {
    clearInterval(this.#timer)
  }

  /** The broker acknowledged in time, or was connected afresh: its late streak ends. */
  clear(backend: Backend<BrokerEndpoint>): void {
    this.#streaks.delete(backend)
  }

  sweep(): void {
    const { queue, live, set, holdDown, log, publishAckTimeoutMs, fall } = this.#options
    const now = Date.now()
    const late = new Set<BrokerConnection>()
    for (const entry of queue.all()) {
      if (entry.state === 'inflight' && (entry.options.qos ?? 0) > 0 && now - entry.sentAt > publishAckTimeoutMs) late.add(entry.connection!)
    }
    for (const connection of late) {
      const backend = live.backendOf(connection)
      if (!backend) continue
      this.#timeouts++
      const streak = (this.#streaks.get(backend) ?? 0) + 1
      this.#streaks.set(backend, streak)
      log.warn('publish not acknowledged in time', { broker: backend.id, timeoutMs: publishAckTimeoutMs, streak })
      if (streak >= fall) {
        holdDown.hold(backend, 'its publishes are not acknowledged in time')
        set.markDown(backend)
      } else {
        set.reportFailure(backend)
      }
    }
  }
}
