import { PostgresDriver, type DatabaseConnection } from 'kysely'
import pg from 'pg'

/** One PostgreSQL server of a replica pool: its identity and its own connection pool. */
export interface PgBackend {
  readonly id: string
  /** Where it is, without credentials: `host:port/database`. */
  readonly label: string
  readonly region: string | undefined
  readonly pool: pg.Pool
  /** Kysely's own driver over `pool`, so results are shaped exactly as `PostgresDialect` shapes them. */
  readonly driver: PostgresDriver
}

/** Options for creating a backend. */
export interface PgBackendInit {
  readonly id: string
  readonly connectionString: string
  readonly region: string | undefined
  readonly poolSize: number
  readonly connectTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly onPoolError: (backend: string, error: Error) => void
}

/**
 * Builds a backend: a pg pool (which never throws an idle client's error at
 * the process) and a Kysely driver over it.
 *
 * @example
 * const backend = await createPgBackend({ id: 'replica-1', connectionString, region: 'eu', poolSize: 10, connectTimeoutMs: 2000, idleTimeoutMs: 10_000, onPoolError })
 */
export async function createPgBackend(init: PgBackendInit): Promise<PgBackend> {
  const url = new URL(init.connectionString)
  const pool = new pg.Pool({
    connectionString: init.connectionString,
    max: init.poolSize,
    connectionTimeoutMillis: init.connectTimeoutMs,
    idleTimeoutMillis: init.idleTimeoutMs,
  })
  pool.on('error', (error) => init.onPoolError(init.id, error))
  // pg emits 'error' on a checked-out client whose server dies; unheard, that
  // would crash the process. The query in flight fails too, and is handled there.
  pool.on('connect', (client) => client.on('error', (error) => init.onPoolError(init.id, error)))
  const driver = new PostgresDriver({ pool })
  await driver.init()
  return Object.freeze({
    id: init.id,
    label: `${url.hostname}:${url.port || 5432}${url.pathname}`,
    region: init.region,
    pool,
    driver,
  })
}

/** Runs one query on a fresh connection of the backend and gives the connection back. */
export async function runOn<R>(backend: PgBackend, use: (connection: DatabaseConnection) => Promise<R>): Promise<R> {
  const connection = await backend.driver.acquireConnection()
  try {
    return await use(connection)
  } finally {
    await backend.driver.releaseConnection(connection as never)
  }
}
