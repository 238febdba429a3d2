import { CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import type { PgBackend } from './pg-backend.js'
import { queryKind } from './query-kind.js'
import { WriteInReadOnlyScopeError } from './errors/write-in-read-only-scope-error.js'
import type { ReplicaPool } from './replica-pool.js'

/** A server connection held for a transaction or a stream, from `ReplicaPool.acquire`. */
export interface PinnedConnection {
  readonly backend: PgBackend
  readonly role: 'primary' | 'replica'
  /** A read-only transaction: on a replica, or on the primary for a read-only scope's consistent read. */
  readonly readOnly: boolean
  /** Kysely's connection from the backend's own `PostgresDriver`. */
  readonly connection: DatabaseConnection
  /** Ends the request's count as outstanding on its replica, for the balancing strategy. */
  readonly done: (() => void) | undefined
}

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
  #pinned: PinnedConnection | undefined

  constructor(pool: ReplicaPool) {
    this.#pool = pool
  }

  /** Pins the connection to a server (a transaction begins). */
  async pin(): Promise<PinnedConnection> {
    this.#pinned ??= await this.#pool.acquire()
    return this.#pinned
  }

  get pinned(): PinnedConnection | undefined {
    return this.#pinned
  }

  /** The transaction on this connection was begun read only (by scope or by Kysely's `accessMode`). */
  readOnlyTransaction = false

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (!this.#pinned) return this.#pool.execute<R>(compiledQuery)
    // Refused here, as a single write in a read-only scope is, rather than by the server with a bare SQLSTATE 25006.
    if (this.#pinned.readOnly && queryKind(compiledQuery.query) === 'write') {
      return Promise.reject(new WriteInReadOnlyScopeError(`A ${compiledQuery.query.kind.replace(/Node$/, '')} in a read-only transaction`))
    }
    return this.#pinned.connection.executeQuery<R>(compiledQuery)
  }

  /**
   * A stream holds one server connection (a replica for a plain read) until
   * it ends, in a transaction of its own: read only where its scope is, and
   * without the sessions' statement_timeout, which would cut off a stream
   * that simply takes long to consume. A streamed write is remembered for
   * read-your-writes once committed. Inside a transaction, it runs there.
   */
  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    if (!this.#pool.canStream) {
      throw new InvalidOptionError('cursor', "streaming needs pg-cursor: npm install pg-cursor, then pass { cursor: Cursor } (import Cursor from 'pg-cursor') to ReplicaPool.create")
    }
    if (this.#pinned) {
      yield* this.#pinned.connection.streamQuery<R>(compiledQuery, chunkSize)
      return
    }
    const kind = queryKind(compiledQuery.query)
    const pinned = (this.#pinned = await this.#pool.acquire(kind))
    const { connection } = pinned
    let failed = false
    try {
      await connection.executeQuery(CompiledQuery.raw(`start transaction${pinned.readOnly ? ' read only' : ''}; set local statement_timeout = 0`))
      yield* connection.streamQuery<R>(compiledQuery, chunkSize)
    } catch (error) {
      failed = true
      throw error
    } finally {
      // A consumer that stopped early ends the stream as autocommit would: what ran is committed.
      const ended = await connection.executeQuery(CompiledQuery.raw(failed ? 'rollback' : 'commit')).then(
        () => true,
        () => false,
      )
      if (ended && !failed && kind !== 'read' && pinned.role === 'primary' && !pinned.readOnly) this.#pool.noteCommit()
      // Only this stream pinned the connection: the queries after it are routed again.
      await this.release()
    }
  }

  /** Gives a pinned server connection back to its pool. */
  async release(): Promise<void> {
    const pinned = this.#pinned
    this.#pinned = undefined
    this.readOnlyTransaction = false
    if (!pinned) return
    try {
      await pinned.backend.driver.releaseConnection(pinned.connection as never)
    } finally {
      pinned.done?.()
    }
  }
}
