import { currentMessage } from '../../src/routemq/message-scope.js'
import { AsyncLocalStorage } from 'node:async_hooks'

/** What a consistency scope remembers of its last write. */
export interface WriteMark {
  /** The primary's WAL insert position right after the write. */
  readonly lsn: bigint | undefined
  readonly at: number
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
  readonly #byMessage = new WeakMap<object, WriteMark>()
  readonly #byKey = new Map<string, WriteMark>()
  readonly #maxKeys: number

  constructor(maxKeys: number) {
    this.#maxKeys = maxKeys
  }

  /** True when the running code has a consistency scope. */
  get inScope(): boolean {
    return explicitKey.getStore() !== undefined || currentMessage() !== undefined
  }

  noteWrite(mark: WriteMark): void {
    const key = explicitKey.getStore()
    if (key !== undefined) {
      const merged = later(this.#byKey.get(key), mark)
      this.#byKey.delete(key)
      this.#byKey.set(key, merged)
      if (this.#byKey.size > this.#maxKeys) this.#byKey.delete(this.#byKey.keys().next().value!)
      return
    }
    const message = currentMessage()
    if (message) this.#byMessage.set(message, later(this.#byMessage.get(message), mark))
  }

  lastWrite(): WriteMark | undefined {
    const key = explicitKey.getStore()
    if (key !== undefined) {
      const mark = this.#byKey.get(key)
      if (mark) {
        // Used keys stay: the map forgets the least recently used one.
        this.#byKey.delete(key)
        this.#byKey.set(key, mark)
      }
      return mark
    }
    const message = currentMessage()
    return message ? this.#byMessage.get(message) : undefined
  }
}

/** Concurrent writes of one scope may finish out of order: the mark only moves forward. */
function later(previous: WriteMark | undefined, next: WriteMark): WriteMark {
  if (!previous) return next
  const lsn = previous.lsn === undefined ? next.lsn : next.lsn === undefined ? previous.lsn : previous.lsn > next.lsn ? previous.lsn : next.lsn
  return { lsn, at: Math.max(previous.at, next.at) }
}
