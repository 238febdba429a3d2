import { CompiledQuery, type DatabaseConnection, type Driver, type QueryCompiler, type TransactionSettings } from 'kysely'
import type { ReplicaPool } from './replica-pool.js'
import { TransactionAbortedError } from './errors/transaction-aborted-error.js'
import { RoutingConnection } from './routing-connection.js'

/**
 * Kysely's driver over a `ReplicaPool`: connections route each query;
 * transactions are pinned to the primary (to a replica, read only, inside a
 * read-only scope) from BEGIN to COMMIT or ROLLBACK.
 *
 * @example
 * new Kysely({ dialect: new ReplicatedPostgresDialect(pool) })
 */
export class ReplicatedDriver implements Driver {
  readonly #pool: ReplicaPool
  /**
   * Released connections, handed out again: Kysely remembers every connection
   * object it has seen (a WeakSet), and a new one per query made that
   * bookkeeping and its garbage the largest cost of a routed query.
   */
  readonly #free: RoutingConnection[] = []

  constructor(pool: ReplicaPool) {
    this.#pool = pool
  }

  async init(): Promise<void> {
    // The pool was started by ReplicaPool.create; Kysely calls destroy() only on a driver it initialised.
  }

  acquireConnection(): Promise<DatabaseConnection> {
    return Promise.resolve(this.#free.pop() ?? new RoutingConnection(this.#pool))
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const routing = connection as RoutingConnection
    const { connection: server, readOnly } = await routing.pin()
    routing.readOnlyTransaction = readOnly || settings.accessMode === 'read only'
    let sql = 'start transaction'
    if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode || readOnly) sql += ` ${readOnly ? 'read only' : settings.accessMode}`
    await server.executeQuery(CompiledQuery.raw(sql))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const routing = connection as RoutingConnection
    const writing = routing.pinned?.role === 'primary' && !routing.readOnlyTransaction
    let rows: { command?: string }[]
    try {
      ;({ rows } = await routing.executeQuery<{ command?: string }>(CompiledQuery.raw('commit')))
    } catch (error) {
      // The connection may have died after the server committed: the outcome is unknown.
      throw writing ? this.#pool.commitFailed(error, routing.pinned.backend) : error
    }
    // PostgreSQL answers COMMIT with ROLLBACK when an earlier statement aborted the transaction.
    if (rows[0]?.command === 'ROLLBACK') throw new TransactionAbortedError()
    if (writing) this.#pool.noteCommit()
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const pinned = (connection as RoutingConnection).pinned
    if (!pinned) throw new Error('rollback without a transaction: Kysely calls beginTransaction first')
    // Kysely's own driver discards the connection when ROLLBACK fails, rather than pooling one in an unknown state.
    await pinned.backend.driver.rollbackTransaction(pinned.connection as never)
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(savepointNode('savepoint', name), queryId()))
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(savepointNode('rollback to', name), queryId()))
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await connection.executeQuery(compile(savepointNode('release', name), queryId()))
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    const routing = connection as RoutingConnection
    // Unpinned (a single routed query): nothing to give back.
    if (!routing.pinned) return this.#recycle(routing)
    return routing.release().finally(() => this.#recycle(routing))
  }

  #recycle(connection: RoutingConnection): Promise<void> {
    if (this.#free.length < MAX_FREE_CONNECTIONS) this.#free.push(connection)
    return RESOLVED
  }

  async destroy(): Promise<void> {
    await this.#pool.close()
  }
}

const RESOLVED = Promise.resolve()

/** More released connections than this are left to the garbage collector: a burst must not pin memory for good. */
const MAX_FREE_CONNECTIONS = 256

// Kysely compiles savepoint commands from raw nodes; the same text, quoted as Kysely quotes identifiers.
function savepointNode(command: string, name: string) {
  return CompiledQuery.raw(`${command} "${name.replace(/"/g, '""')}"`).query
}

function queryId(): { readonly queryId: string } {
  return { queryId: `savepoint-${Math.random().toString(36).slice(2)}` }
}
