/**
 * A map that keeps at most `capacity` entries and forgets the least recently
 * used first: a `get` that finds its key, or a `set`, makes that entry the
 * most recent. Insertion order of a `Map` is the recency order, so every
 * operation is O(1).
 *
 * @example
 * const cache = new LruMap<string, string>(2)
 * cache.set('a', '1'); cache.set('b', '2'); cache.get('a'); cache.set('c', '3') // 'b' is gone
 */
export class LruMap<K, V> {
  readonly #entries = new Map<K, V>()
  readonly #capacity: number

  constructor(capacity: number) {
    this.#capacity = capacity
  }

  get size(): number {
    return this.#entries.size
  }

  get(key: K): V | undefined {
    const value = this.#entries.get(key)
    if (value !== undefined) {
      this.#entries.delete(key)
      this.#entries.set(key, value)
    }
    return value
  }

  set(key: K, value: V): void {
    this.#entries.delete(key)
    this.#entries.set(key, value)
    if (this.#entries.size > this.#capacity) this.#entries.delete(this.#entries.keys().next().value!)
  }

  clear(): void {
    this.#entries.clear()
  }
}
