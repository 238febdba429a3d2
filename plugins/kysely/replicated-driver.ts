import { CompiledQuery, type DatabaseConnection, type Driver, type QueryCompiler, type TransactionSettings } from 'kysely'
import type { ReplicaPool } from './replica-pool.js'
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

  constructor(pool: ReplicaPool) {
    this.#pool = pool
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new RoutingConnection(this.#pool)
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const routing = connection as RoutingConnection
    const server = await routing.pin()
    const readOnly = routing.pinned?.role === 'replica'
    let sql = 'start transaction'
    if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`
    if (settings.accessMode || readOnly) sql += ` ${readOnly ? 'read only' : settings.accessMode}`
    await server.executeQuery(CompiledQuery.raw(sql))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const routing = connection as RoutingConnection
    await routing.executeQuery(CompiledQuery.raw('commit'))
    if (routing.pinned?.role === 'primary') await this.#pool.noteCommit(routing.pinned.connection)
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
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

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    await (connection as RoutingConnection).release()
  }

  async destroy(): Promise<void> {
    await this.#pool.close()
  }
}

// Kysely compiles savepoint commands from raw nodes; the same text, quoted as Kysely quotes identifiers.
function savepointNode(command: string, name: string) {
  return CompiledQuery.raw(`${command} "${name.replace(/"/g, '""')}"`).query
}

function queryId(): { readonly queryId: string } {
  return { queryId: `savepoint-${Math.random().toString(36).slice(2)}` }
}
