import { PostgresDriver, type DatabaseConnection } from 'kysely'
import pg from 'pg'

/** One PostgreSQL server of a replica pool: its identity and its own connection pool. */
export interface PgBackend {
  readonly id: string
  /** Where it is, without credentials: `host:port/database`. */
  readonly label: string
  readonly region: string | undefined
  readonly pool: pg.Pool
  /** A pool of one for probes, so that a busy application pool never makes a server look dead. */
  readonly probePool: pg.Pool
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
  /** Open sessions read-only: a replica (or a replica just promoted) then refuses any write itself. */
  readonly readOnly: boolean
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
  const make = (max: number): pg.Pool => {
    const pool = new pg.Pool({
      connectionString: init.connectionString,
      max,
      connectionTimeoutMillis: init.connectTimeoutMs,
      idleTimeoutMillis: init.idleTimeoutMs,
      // Idle connections alone must not keep the process alive.
      allowExitOnIdle: true,
      ...(init.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    })
    pool.on('error', (error) => init.onPoolError(init.id, error))
    // pg emits 'error' on a checked-out client whose server dies; unheard, that
    // would crash the process. The query in flight fails too, and is handled there.
    pool.on('connect', (client) => client.on('error', (error) => init.onPoolError(init.id, error)))
    return pool
  }
  const pool = make(init.poolSize)
  const probePool = make(1)
  const driver = new PostgresDriver({ pool })
  await driver.init()
  return Object.freeze({
    id: init.id,
    label: `${url.hostname}:${url.port || 5432}${url.pathname}`,
    region: init.region,
    pool,
    probePool,
    driver,
  })
}

/** Runs one probe query on the backend's own probe connection. */
export async function probeOn<R extends object>(backend: PgBackend, sql: string): Promise<R[]> {
  const { rows } = await backend.probePool.query<R>(sql)
  return rows
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
