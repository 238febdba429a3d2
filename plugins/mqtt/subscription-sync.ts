import { isSubscriptionRejectedError } from '../../src/routemq/plugin-api.js'
import type { Subscription } from '../../src/routemq/plugin-api.js'
import { filtersOverlap } from '../../src/routemq/plugin-api.js'
import type { BrokerConnection } from './broker-connection.js'

/**
 * The routes' subscriptions the pool holds on every connection, and what
 * each connection has been granted: brings a connection in line with the
 * pool however often the routes change while it subscribes.
 *
 * @example
 * sync.add(subscriptions)
 * await Promise.all(connections.map((c) => sync.sync(c)))
 */
export class SubscriptionSync {
  readonly #protocolVersion: 4 | 5
  readonly #wanted = new Map<string, Subscription>()
  readonly #granted = new WeakMap<BrokerConnection, Set<string>>()
  readonly #syncing = new WeakMap<BrokerConnection, Promise<void>>()
  /** Connections that handed their routes back: never subscribed again. */
  readonly #released = new WeakSet<BrokerConnection>()
  #version = 0
  #known = false
  #becameKnown: () => void = () => undefined
  readonly #whenKnown = new Promise<void>((resolve) => (this.#becameKnown = resolve))

  constructor(protocolVersion: 4 | 5) {
    this.#protocolVersion = protocolVersion
  }

  /** True once the application has said what it subscribes to. */
  get known(): boolean {
    return this.#known
  }

  /** Resolves once the application has said what it subscribes to. */
  whenKnown(): Promise<void> {
    return this.#whenKnown
  }

  /** The filters wanted, `$share/<group>/` prefixes included. */
  get filters(): string[] {
    return [...this.#wanted.keys()]
  }

  add(subscriptions: readonly Subscription[]): void {
    for (const subscription of subscriptions) this.#wanted.set(subscription.topic, subscription)
    this.#version++
    this.#known = true
    this.#becameKnown()
  }

  remove(topics: readonly string[]): void {
    for (const topic of topics) this.#wanted.delete(topic)
    this.#version++
  }

  /** Whether a message on `topic` is one the routes subscribe to. */
  matches(topic: string): boolean {
    for (const filter of this.#wanted.keys()) if (filtersOverlap(filter, topic)) return true
    return false
  }

  /**
   * Subscribes what `connection` lacks and unsubscribes what is no longer
   * wanted, again while the wanted set changes meanwhile. A connection lost
   * meanwhile ends it quietly (its successor subscribes afresh); a refused
   * subscription throws `SubscriptionRejectedError`. Calls for one
   * connection run one after another.
   */
  sync(connection: BrokerConnection): Promise<void> {
    return this.#chain(connection, () => this.#syncNow(connection))
  }

  #chain(connection: BrokerConnection, step: () => Promise<void>): Promise<void> {
    const previous = this.#syncing.get(connection) ?? Promise.resolve()
    const next = previous.catch(() => undefined).then(step)
    this.#syncing.set(connection, next)
    return next
  }

  async #syncNow(connection: BrokerConnection): Promise<void> {
    let granted = this.#granted.get(connection)
    if (!granted) this.#granted.set(connection, (granted = new Set()))
    let version = -1
    while (version !== this.#version && connection.open && !this.#released.has(connection)) {
      version = this.#version
      const add = [...this.#wanted.values()].filter((s) => !granted.has(s.topic))
      const remove = [...granted].filter((topic) => !this.#wanted.has(topic))
      try {
        await connection.subscribe(add, this.#protocolVersion)
        for (const s of add) granted.add(s.topic)
        await connection.unsubscribe(remove)
        for (const topic of remove) granted.delete(topic)
      } catch (error) {
        if (connection.open || isSubscriptionRejectedError(error)) throw error
        return
      }
    }
  }

  /**
   * Unsubscribes every route on `connection` (handing its share back), after
   * any sync under way, and never subscribes them there again; the pool's
   * wanted set stays.
   */
  release(connection: BrokerConnection): Promise<void> {
    this.#released.add(connection)
    return this.#chain(connection, async () => {
      const granted = this.#granted.get(connection)
      if (!granted || granted.size === 0) return
      const topics = [...granted]
      await connection.unsubscribe(topics)
      for (const topic of topics) granted.delete(topic)
    })
  }
}
