import { connectAsync, type MqttClient } from 'mqtt'

/**
 * Subscribers on every broker that count message ids (the payload), to tell
 * lost messages from duplicates across brokers.
 *
 * @example
 * const counter = await IdCounter.start(urls, 'load/#')
 * await counter.waitFor(ids)
 */
export class IdCounter {
  readonly seen = new Map<string, number>()
  readonly #clients: MqttClient[]
  #waiters: { ids: readonly string[]; resolve: () => void }[] = []

  /** Per client, the subscription of its current connection (again after each reconnect to a restarted broker). */
  readonly #subscribed: Promise<unknown>[]

  private constructor(clients: MqttClient[], filter: string) {
    this.#clients = clients
    this.#subscribed = clients.map((client) => client.subscribeAsync(filter, { qos: 1 }))
    clients.forEach((client, i) => {
      let reconnected: ((subscribed: Promise<unknown>) => void) | undefined
      client.on('connect', () => {
        const subscribed = client.subscribeAsync(filter, { qos: 1 })
        if (reconnected) reconnected(subscribed)
        else this.#subscribed[i] = subscribed
        reconnected = undefined
      })
      client.on('close', () => {
        if (reconnected) return
        this.#subscribed[i] = new Promise((resolve) => (reconnected = resolve))
      })
      client.on('message', (_topic, payload) => {
        const id = payload.toString()
        this.seen.set(id, (this.seen.get(id) ?? 0) + 1)
        this.#check()
      })
    })
  }

  static async start(urls: readonly string[], filter: string): Promise<IdCounter> {
    const clients = await Promise.all(urls.map((url, i) => connectAsync(url, { clientId: `id-counter-${i}-${process.pid}`, reconnectPeriod: 200, resubscribe: false })))
    for (const client of clients) client.on('error', () => undefined)
    const counter = new IdCounter(clients, filter)
    await counter.subscribed()
    return counter
  }

  /** Resolves once every subscriber is connected and subscribed, again after a broker it was on restarted. */
  async subscribed(): Promise<void> {
    await Promise.all(this.#subscribed)
  }

  /**
   * Resolves once every id has been seen at least once; rejects after
   * `timeoutMs` naming the ids still missing, so that a lost message fails
   * the test with its evidence instead of running into the test's timeout.
   */
  waitFor(ids: readonly string[], timeoutMs = 20_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((waiter) => waiter.resolve !== done)
        const missing = this.missing(ids)
        reject(new Error(`${missing.length} of ${ids.length} ids not seen after ${timeoutMs} ms: ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.#waiters.push({ ids, resolve: done })
      this.#check()
    })
  }

  missing(ids: readonly string[]): string[] {
    return ids.filter((id) => !this.seen.has(id))
  }

  get duplicates(): number {
    let extra = 0
    for (const count of this.seen.values()) extra += count - 1
    return extra
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.endAsync(true)))
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (waiter.ids.some((id) => !this.seen.has(id))) return true
      waiter.resolve()
      return false
    })
  }
}
