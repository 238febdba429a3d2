import { PostgresDriver, type DatabaseConnection, type PostgresPool, type PostgresPoolClient } from 'kysely'
import pg from 'pg'
import { QueryTimeoutError } from './errors/query-timeout-error.js'

/** One PostgreSQL server of a replica pool: its identity and its own connection pool. */
export interface PgBackend {
  readonly id: string
  /** Where it is, without credentials: `host:port/database`. */
  readonly label: string
  readonly region: string | undefined
  readonly pool: pg.Pool
  /** A pool of one for probes, so that a busy application pool never makes a server look dead. */
  readonly probePool: TimedPool
  /**
   * Closes the connections of every query in flight on this server, so that
   * they fail at once (and reads are retried elsewhere) instead of waiting on
   * a server the probes found dead.
   */
  readonly abortInFlight: () => number
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
  /** Longest wait for a query's answer before its connection is closed; 0 for none. */
  readonly queryTimeoutMs: number
  readonly probeTimeoutMs: number
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
  const pool = new TimedPool(make(init.poolSize), init.id, init.queryTimeoutMs)
  const probePool = new TimedPool(make(1), init.id, init.probeTimeoutMs)
  const driver = new PostgresDriver({ pool })
  await driver.init()
  return Object.freeze({
    id: init.id,
    label: `${url.hostname}:${url.port || 5432}${url.pathname}`,
    region: init.region,
    pool: pool.raw,
    probePool,
    abortInFlight: () => pool.abortInFlight(),
    driver,
  })
}

/** Runs one probe query on the backend's own probe connection. */
export async function probeOn<R extends object>(backend: PgBackend, sql: string): Promise<R[]> {
  const client = await backend.probePool.connect()
  try {
    const { rows } = (await client.query(sql, [])) as { rows: R[] }
    return rows
  } finally {
    client.release()
  }
}

/**
 * The subset of a pg pool Kysely uses, with a time limit on every query: a
 * query without an answer in time fails with `QueryTimeoutError` and its
 * connection is destroyed rather than returned, so a silently dropped link
 * cannot hold pool slots forever.
 *
 * @example
 * new PostgresDriver({ pool: new TimedPool(pgPool, 'replica-1', 30_000) })
 */
export class TimedPool implements PostgresPool {
  readonly raw: pg.Pool
  readonly #backend: string
  readonly #timeoutMs: number
  readonly #wrappers = new WeakMap<pg.PoolClient, TimedClient>()
  readonly #inUse = new Set<TimedClient>()
  #sweeper: NodeJS.Timeout | undefined

  constructor(pool: pg.Pool, backend: string, timeoutMs: number) {
    this.raw = pool
    this.#backend = backend
    this.#timeoutMs = timeoutMs
    if (timeoutMs > 0) {
      // One sweep for all queries rather than a timer per query: the query path stays cheap.
      this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4))))
      this.#sweeper.unref()
    }
  }

  async connect(): Promise<TimedClient> {
    const client = await this.raw.connect()
    let wrapper = this.#wrappers.get(client)
    if (!wrapper) this.#wrappers.set(client, (wrapper = new TimedClient(client, this.#backend, this.#timeoutMs)))
    wrapper.checkOut()
    this.#inUse.add(wrapper)
    wrapper.onRelease = this.#released
    return wrapper
  }

  async end(): Promise<void> {
    clearInterval(this.#sweeper)
    this.abortInFlight()
    await this.raw.end()
  }

  /** Destroys the connections of every query in flight; returns how many. */
  abortInFlight(): number {
    let aborted = 0
    for (const client of this.#inUse) if (client.destroy(undefined)) aborted++
    return aborted
  }

  readonly #released = (client: TimedClient): void => {
    this.#inUse.delete(client)
  }

  #sweep(): void {
    const now = performance.now()
    for (const client of this.#inUse) client.expireIfOlder(now - this.#timeoutMs)
  }
}

class TimedClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient
  readonly #backend: string
  readonly #timeoutMs: number
  onRelease: ((client: TimedClient) => void) | undefined
  #broken = false
  /** When the query in flight started (performance.now()), or 0. */
  #since = 0
  #reject: ((error: Error) => void) | undefined

  constructor(client: pg.PoolClient, backend: string, timeoutMs: number) {
    this.#client = client
    this.#backend = backend
    this.#timeoutMs = timeoutMs
  }

  checkOut(): void {
    this.#broken = false
  }

  query(...args: unknown[]): any {
    const [sql, parameters] = args as [unknown, unknown[] | undefined]
    // A cursor (streaming) is a submittable object, passed through as is.
    if (typeof sql !== 'string') return (this.#client.query as (q: unknown) => unknown)(sql)
    const pending = this.#client.query(sql, parameters)
    this.#since = performance.now()
    return new Promise((resolve, reject) => {
      this.#reject = reject
      pending.then(
        (result) => {
          this.#since = 0
          this.#reject = undefined
          resolve(result)
        },
        (error: unknown) => {
          this.#since = 0
          this.#reject = undefined
          reject(error)
        },
      )
    })
  }

  release(): void {
    this.onRelease?.(this)
    // A destroyed connection goes back as broken, so the pool drops it and frees the slot.
    this.#client.release(this.#broken ? new Error('connection closed by the replica pool') : undefined)
  }

  /** Fails the query in flight with QueryTimeoutError if it started before `deadline`. */
  expireIfOlder(deadline: number): void {
    if (this.#since !== 0 && this.#since < deadline) this.destroy(new QueryTimeoutError(this.#backend, this.#timeoutMs))
  }

  /** Closes the socket under a query in flight (failing it with `error`, if given); false when there was none. */
  destroy(error: Error | undefined): boolean {
    if (this.#since === 0 || this.#broken) return false
    this.#broken = true
    const reject = this.#reject
    this.#reject = undefined
    if (error && reject) reject(error)
    ;(this.#client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
    return true
  }
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
