import { LruMap } from '../../src/lru-map.js'
import { currentMessage } from '../../src/routemq/plugin-api.js'
import { AsyncLocalStorage } from 'node:async_hooks'
import type { MessageContext } from '../../src/routemq/plugin-api.js'
import { carriedPosition } from './write-position.js'

/** What a consistency scope remembers of its last write. */
export interface WriteMark {
  /**
   * The primary's WAL position the write is at or before; PENDING_POSITION
   * until it is asked for (any position read after the write covers it);
   * UNKNOWN_POSITION when it cannot be known; `undefined` in window mode.
   */
  readonly lsn: bigint | undefined
  readonly at: number
  /** When `lsn` is UNKNOWN_POSITION: when the latest write of unknown outcome was noted. */
  readonly unknownAt?: number
  /** When `lsn` is PENDING_POSITION: the pool's count of finished writes when this one finished. */
  readonly seq?: number
}

const explicitKey = new AsyncLocalStorage<string>()

/**
 * Runs `fn` in the consistency scope named `key` (a device id, a tenant):
 * reads in it see the writes made in it, across messages.
 *
 * @example
 * await withConsistencyKey(`device:${id}`, () => repo.updateConfig(id, config))
 */
export function withConsistencyKey<T>(key: string, fn: () => T): T {
  return explicitKey.run(key, fn)
}

/**
 * Remembers, per consistency scope, the last write: by default the scope is
 * the message being handled (forgotten with it), or an explicit key, kept in a
 * bounded least-recently-used map.
 *
 * @example
 * tracker.noteWrite({ lsn, at: Date.now() })
 * tracker.lastWrite() // the mark for the current message or key
 */
export class ConsistencyTracker {
  readonly #byMessage = new WeakMap<MessageContext, WriteMark>()
  readonly #byKey: LruMap<string, WriteMark>
  readonly #unknownHorizonMs: number

  /**
   * @param unknownHorizonMs how long after a write of unknown outcome it may
   * still take effect (the server's statement_timeout); a known position
   * noted later than that replaces it. Infinity when there is no bound.
   */
  constructor(maxKeys: number, unknownHorizonMs: number) {
    this.#byKey = new LruMap(maxKeys)
    this.#unknownHorizonMs = unknownHorizonMs
  }

  /** True when the running code has a consistency scope. */
  get inScope(): boolean {
    return explicitKey.getStore() !== undefined || currentMessage() !== undefined
  }

  /** Remembers a write for the explicit key and for the message being handled, whichever are in force. */
  noteWrite(mark: WriteMark): void {
    const key = explicitKey.getStore()
    if (key !== undefined) {
      this.#byKey.set(key, this.#later(this.#byKey.get(key), mark))
    }
    const message = currentMessage()
    if (message) this.#byMessage.set(message, this.#later(this.#byMessage.get(message), mark))
  }

  /**
   * The later of the explicit key's and the message's last writes: a read
   * must see both. The message's include the position it carries (another
   * instance's write, see `WRITE_POSITION_PROPERTY`). `message` is the one
   * being handled (a caller that already looked it up passes it).
   */
  lastWrite(message: MessageContext | undefined = currentMessage()): WriteMark | undefined {
    const byMessage = message ? this.#ofMessage(message) : undefined
    const key = explicitKey.getStore()
    if (key === undefined) return byMessage
    // Used keys stay: the map forgets the least recently used one.
    const byKey = this.#byKey.get(key)
    return byMessage && byKey ? this.#later(byKey, byMessage) : (byKey ?? byMessage)
  }

  #ofMessage(message: MessageContext): WriteMark | undefined {
    const own = this.#byMessage.get(message)
    const position = carriedPosition(message)
    if (position === undefined) return own
    const mark: WriteMark = { lsn: position, at: 0 }
    return own ? this.#later(own, mark) : mark
  }

  /**
   * The writes noted in the running code's scopes up to `seq` are at or
   * before `lsn` (a position asked for after they finished): their pending
   * marks take it.
   */
  settle(seq: number, lsn: bigint): void {
    const settled = (mark: WriteMark | undefined): WriteMark | undefined =>
      mark?.lsn === PENDING_POSITION && mark.seq! <= seq ? { lsn, at: mark.at } : undefined
    const key = explicitKey.getStore()
    if (key !== undefined) {
      const mark = settled(this.#byKey.get(key))
      if (mark) this.#byKey.set(key, mark)
    }
    const message = currentMessage()
    if (message) {
      const mark = settled(this.#byMessage.get(message))
      if (mark) this.#byMessage.set(message, mark)
    }
  }

  /**
   * Concurrent writes of one scope may finish out of order: the mark only
   * moves forward. A write of unknown outcome wins, until a position (known or
   * pending) noted after the horizon, when it can no longer take effect
   * unseen. A pending position is at least every known one (it will be read
   * later), so it wins over them.
   */
  #later(previous: WriteMark | undefined, next: WriteMark): WriteMark {
    const marks = previous ? [previous, next] : [next]
    const at = Math.max(...marks.map((mark) => mark.at))
    const unknownAt = Math.max(...marks.map((mark) => (mark.lsn === UNKNOWN_POSITION ? (mark.unknownAt ?? mark.at) : Number.NEGATIVE_INFINITY)))
    const known = marks.filter((mark) => mark.lsn !== undefined && mark.lsn !== UNKNOWN_POSITION)
    if (unknownAt !== Number.NEGATIVE_INFINITY && !known.some((mark) => mark.at - unknownAt > this.#unknownHorizonMs)) {
      return { lsn: UNKNOWN_POSITION, at, unknownAt }
    }
    const pending = known.filter((mark) => mark.lsn === PENDING_POSITION)
    if (pending.length > 0) return { lsn: PENDING_POSITION, at, seq: Math.max(...pending.map((mark) => mark.seq ?? 0)) }
    const lsn = known.reduce<bigint | undefined>((max, mark) => (max === undefined || mark.lsn! > max ? mark.lsn : max), undefined)
    return { lsn, at }
  }

}

/** The mark of a write whose WAL position could not be read, or whose outcome is unknown: no replica can be shown to have it. */
export const UNKNOWN_POSITION = 2n ** 64n

/** The mark of a write whose position has not been asked for yet: the first read (or publish) that needs it asks the primary. */
export const PENDING_POSITION = 2n ** 64n + 1n
