import type { Backend } from '../../src/balancing/backend.js'
import type { BrokerConnection } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'

/**
 * The connections taking traffic, by broker: at most one in failover mode,
 * one per connected broker in all mode.
 *
 * @example
 * live.add(backend, connection)
 * const backend = live.backendOf(connection)
 */
export class LiveConnections {
  readonly #byBackend = new Map<Backend<BrokerEndpoint>, BrokerConnection>()

  get size(): number {
    return this.#byBackend.size
  }

  add(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    this.#byBackend.set(backend, connection)
  }

  /** Removes `backend`'s connection if it is still `connection`. */
  delete(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): void {
    if (this.#byBackend.get(backend) === connection) this.#byBackend.delete(backend)
  }

  get(backend: Backend<BrokerEndpoint>): BrokerConnection | undefined {
    return this.#byBackend.get(backend)
  }

  has(backend: Backend<BrokerEndpoint>): boolean {
    return this.#byBackend.has(backend)
  }

  backendOf(connection: BrokerConnection): Backend<BrokerEndpoint> | undefined {
    for (const [backend, c] of this.#byBackend) if (c === connection) return backend
    return undefined
  }

  entries(): IterableIterator<[Backend<BrokerEndpoint>, BrokerConnection]> {
    return this.#byBackend.entries()
  }

  connections(): BrokerConnection[] {
    return [...this.#byBackend.values()]
  }

  /** Takes every connection out, returning them. */
  clear(): BrokerConnection[] {
    const all = this.connections()
    this.#byBackend.clear()
    return all
  }
}
