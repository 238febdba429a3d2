import type { PublishOptions } from '../../src/routemq/plugin-api.js'
import type { BrokerConnection } from './broker-connection.js'
import { OfflineBufferFullError } from './errors/offline-buffer-full-error.js'

/** A publish the pool has taken and not yet seen acknowledged. */
export interface OutgoingPublish {
  readonly topic: string
  readonly payload: string | Buffer
  readonly options: PublishOptions
  readonly bytes: number
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  /** `pending`: waiting for a broker; `inflight`: sent on `connection`, not yet acknowledged. Changed by the queue only. */
  state: 'pending' | 'inflight'
  connection: BrokerConnection | undefined
  /** Increases with each send, so that a late answer to an earlier send is ignored. */
  attempt: number
  /** Connections lost while this was in flight. */
  losses: number
  sentAt: number
  /** Ends the broker's outstanding count for this send. */
  release: () => void
}

/**
 * A new entry for `queue.add`, pending.
 *
 * @example
 * queue.add(outgoing(topic, payload, options, resolve, reject))
 */
export function outgoing(
  topic: string,
  payload: string | Buffer,
  options: PublishOptions,
  resolve: () => void,
  reject: (error: Error) => void,
): OutgoingPublish {
  const bytes = Buffer.byteLength(topic) + (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length)
  return { topic, payload, options, bytes, resolve, reject, state: 'pending', connection: undefined, attempt: 0, losses: 0, sentAt: 0, release: noop }
}

function noop(): void {}

/**
 * Every publish the pool has taken and not yet seen acknowledged, in the order
 * they were made: what is replayed, in that order, after a failover. Bounded
 * by count and bytes; a publish that does not fit is refused, never anything
 * already taken.
 *
 * @example
 * queue.add(entry)           // throws OfflineBufferFullError when full
 * for (const e of queue.pending()) send(e)
 */
export class PublishQueue {
  readonly #maxMessages: number
  readonly #maxBytes: number
  readonly #entries = new Set<OutgoingPublish>()
  #bytes = 0
  #pending = 0

  constructor(limits: { readonly maxMessages: number; readonly maxBytes: number }) {
    this.#maxMessages = limits.maxMessages
    this.#maxBytes = limits.maxBytes
  }

  get size(): number {
    return this.#entries.size
  }

  get bytes(): number {
    return this.#bytes
  }

  add(entry: OutgoingPublish): void {
    if (this.#entries.size >= this.#maxMessages) throw new OfflineBufferFullError(`${this.#maxMessages} messages`)
    if (this.#bytes + entry.bytes > this.#maxBytes) throw new OfflineBufferFullError(`${this.#maxBytes} bytes`)
    this.#entries.add(entry)
    this.#bytes += entry.bytes
    if (entry.state === 'pending') this.#pending++
  }

  remove(entry: OutgoingPublish): boolean {
    if (!this.#entries.delete(entry)) return false
    this.#bytes -= entry.bytes
    if (entry.state === 'pending') this.#pending--
    entry.release()
    return true
  }

  /** Records that `entry` was sent on `connection`; returns the attempt number to check answers against. */
  markSent(entry: OutgoingPublish, connection: BrokerConnection, release: () => void, now: number): number {
    if (entry.state === 'pending') this.#pending--
    entry.state = 'inflight'
    entry.connection = connection
    entry.release = release
    entry.sentAt = now
    return ++entry.attempt
  }

  /** Takes an in-flight entry back, to be sent again. */
  markPending(entry: OutgoingPublish): void {
    if (entry.state === 'pending') return
    entry.release()
    entry.release = noop
    entry.state = 'pending'
    entry.connection = undefined
    this.#pending++
  }

  /** Entries waiting for a broker. */
  get pendingCount(): number {
    return this.#pending
  }

  has(entry: OutgoingPublish): boolean {
    return this.#entries.has(entry)
  }

  /** Entries waiting for a broker, oldest first. */
  *pending(): IterableIterator<OutgoingPublish> {
    for (const entry of this.#entries) if (entry.state === 'pending') yield entry
  }

  /** Entries sent on `connection` and not yet acknowledged, oldest first. */
  inflightOn(connection: BrokerConnection): OutgoingPublish[] {
    const found: OutgoingPublish[] = []
    for (const entry of this.#entries) if (entry.state === 'inflight' && entry.connection === connection) found.push(entry)
    return found
  }

  /** Every entry, oldest first. */
  all(): OutgoingPublish[] {
    return [...this.#entries]
  }

}
