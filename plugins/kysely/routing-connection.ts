import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely'
import type { PgBackend } from './pg-backend.js'
import type { ReplicaPool } from './replica-pool.js'

/**
 * What Kysely gets from `acquireConnection()`: no server yet. Each query is
 * routed on its own, except inside a transaction or a stream, where the
 * connection is pinned to one server until it is released.
 *
 * @example
 * const connection = new RoutingConnection(pool)
 * await connection.executeQuery(compiled) // routed by kind and scope
 */
export class RoutingConnection implements DatabaseConnection {
  readonly #pool: ReplicaPool
  #pinned: { readonly backend: PgBackend; readonly role: 'primary' | 'replica'; readonly readOnly: boolean; readonly connection: DatabaseConnection } | undefined

  constructor(pool: ReplicaPool) {
    this.#pool = pool
  }

  /** Pins the connection to a server (a transaction begins). */
  async pin(): Promise<DatabaseConnection> {
    this.#pinned ??= await this.#pool.acquire()
    return this.#pinned.connection
  }

  get pinned(): { readonly role: 'primary' | 'replica'; readonly readOnly: boolean; readonly connection: DatabaseConnection } | undefined {
    return this.#pinned
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#pinned) return this.#pinned.connection.executeQuery<R>(compiledQuery)
    return this.#pool.execute<R>(compiledQuery)
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    const connection = await this.pin()
    yield* connection.streamQuery<R>(compiledQuery, chunkSize)
  }

  /** Gives a pinned server connection back to its pool. */
  async release(): Promise<void> {
    const pinned = this.#pinned
    this.#pinned = undefined
    if (pinned) await this.#pool.release(pinned.backend, pinned.connection)
  }
}
