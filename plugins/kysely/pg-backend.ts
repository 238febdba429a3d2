import { PostgresDriver, type DatabaseConnection, type PostgresCursorConstructor, type PostgresPool, type PostgresPoolClient } from 'kysely'
import type { Context } from '@opentelemetry/api'
import pg from 'pg'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { closableCursor } from './closable-cursor.js'
import { isPoolWaitTimeout } from './connection-errors.js'
import { QueryTimeoutError } from './errors/query-timeout-error.js'
import { ReplicaPoolClosedError } from './errors/replica-pool-closed-error.js'
import { QueryTracing } from './query-tracing.js'

/** One PostgreSQL server of a replica pool: its identity and its own connection pool. */
export interface PgBackend {
  readonly id: string
  /** Where it is, without credentials: `host:port/database`. */
  readonly label: string
  readonly region: string | undefined
  /** Its connection pool, with a time limit on every query (`timed.raw` is pg's own pool). */
  readonly timed: TimedPool
  /** A pool of one for probes, so that a busy application pool never makes a server look dead. */
  readonly probePool: TimedPool
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
  /** pg-cursor's Cursor class, for streaming; none to leave streaming off. */
  readonly cursor: PostgresCursorConstructor | undefined
  /** An idle pooled connection failed (the server went away between queries). */
  readonly onPoolError: (backend: string, error: Error) => void
}

function ignore(): void {}

/**
 * Takes a failure's stack again where it is caught, as pg does for its
 * promises: an error raised while reading the socket would otherwise show
 * only pg's parser, not the code that ran the query.
 */
function restack(error: unknown): never {
  if (error instanceof Error) Error.captureStackTrace(error)
  throw error
}

/** After the grace period, how long `end()` waits for holders to release the connections closed under them. */
const RELEASE_WAIT_MS = 1000

/**
 * `statement_timeout` for sessions whose queries the pool times out after
 * `timeoutMs`: just above it, past the sweep that enforces it, so the pool
 * always gives up first and reports QueryTimeoutError; the server then stops
 * a statement nobody waits for any more.
 *
 * @example
 * serverStatementTimeoutMs(30_000) // 32_000
 */
export function serverStatementTimeoutMs(timeoutMs: number): number {
  return timeoutMs + sweepIntervalMs(timeoutMs) + 1000
}

function sweepIntervalMs(timeoutMs: number): number {
  return Math.max(10, Math.min(1000, Math.floor(timeoutMs / 4)))
}

/**
 * pg's settings for a connection string plus session settings (`name=value`)
 * sent at connect. pg lets an `options` parameter in the URL replace the
 * `options` setting, so the URL's own options are merged with ours: after our
 * defaults (a statement_timeout of the user's wins, whatever its value),
 * before what must hold (replica sessions stay read-only).
 */
export function withSessionSettings(
  connectionString: string,
  settings: { readonly defaults: readonly string[]; readonly enforced: readonly string[] },
): { connectionString: string; options?: string } {
  const url = new URL(connectionString)
  const own = url.searchParams.get('options')
  url.searchParams.delete('options')
  // PostgreSQL applies -c settings in order, the last one winning: the URL's own
  // settings override our defaults, and nothing overrides what must hold.
  const options = [...settings.defaults.map((s) => `-c ${s}`), ...(own === null ? [] : [own]), ...settings.enforced.map((s) => `-c ${s}`)].join(' ')
  if (options === '') return { connectionString }
  return { connectionString: own === null ? connectionString : url.toString(), options }
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
  const make = (max: number, timeoutMs: number): pg.Pool => {
    const settings = {
      // The server stops a statement the pool gave up on (its socket may never reach the server to close it).
      defaults: timeoutMs > 0 ? [`statement_timeout=${serverStatementTimeoutMs(timeoutMs)}`] : [],
      enforced: init.readOnly ? ['default_transaction_read_only=on'] : [],
    }
    const pool = new pg.Pool({
      ...withSessionSettings(init.connectionString, settings),
      max,
      connectionTimeoutMillis: init.connectTimeoutMs,
      idleTimeoutMillis: init.idleTimeoutMs,
      // Idle connections alone must not keep the process alive.
      allowExitOnIdle: true,
    })
    pool.on('error', (error) => init.onPoolError(init.id, error))
    // pg emits 'error' on a client whose connection fails; unheard, that would
    // crash the process. An idle client's failure reaches the pool's listener
    // above; a checked-out client's fails its query, which is handled (and
    // logged) where the query was routed, so it is not reported twice.
    pool.on('connect', (client) => client.on('error', ignore))
    return pool
  }
  // The application's queries are traced; the probes' (every second, outside any message) are not.
  const tracing = new QueryTracing({
    id: init.id, host: url.hostname, port: Number(url.port || 5432), database: decodeURIComponent(url.pathname.slice(1)), role: init.readOnly ? 'replica' : 'primary',
  })
  const pool = new TimedPool(make(init.poolSize, init.queryTimeoutMs), init.id, init.queryTimeoutMs, tracing)
  const probePool = new TimedPool(make(1, init.probeTimeoutMs), init.id, init.probeTimeoutMs)
  const driver = new PostgresDriver({ pool, ...(init.cursor ? { cursor: closableCursor(init.cursor) } : {}) })
  await driver.init()
  return Object.freeze({
    id: init.id,
    label: `${url.hostname}:${url.port || 5432}${url.pathname}`,
    region: init.region,
    timed: pool,
    probePool,
    driver,
  })
}

/** `probeOn`, failing after `timeoutMs` without an answer (the probe connection's own timeout closes it soon after). */
export function probeWithin<R extends object>(backend: PgBackend, sql: string, timeoutMs: number): Promise<R[]> {
  return raceTimeout(probeOn<R>(backend, sql), timeoutMs, (): never => {
    throw new Error(`probe got no answer within ${timeoutMs} ms`)
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
  readonly #tracing: QueryTracing | undefined
  readonly #wrappers = new WeakMap<pg.PoolClient, TimedClient>()
  /**
   * Every connection of the pool, wrapped once when it is first checked out
   * and forgotten when the pool removes it: the query path then does no
   * bookkeeping of its own, and the sweep finds the queries in flight by
   * their start time.
   */
  readonly #all = new Set<TimedClient>()
  #sweeper: NodeJS.Timeout | undefined
  #ending: Promise<void> | undefined
  #ended = false
  /** While end() waits for the pool to drain: look again. */
  #drainCheck: (() => void) | undefined

  constructor(pool: pg.Pool, backend: string, timeoutMs: number, tracing?: QueryTracing) {
    this.raw = pool
    this.#backend = backend
    this.#timeoutMs = timeoutMs
    this.#tracing = tracing
    pool.on('remove', (client) => {
      const wrapper = this.#wrappers.get(client)
      if (wrapper) this.#all.delete(wrapper)
    })
    if (timeoutMs > 0) {
      // One sweep for all queries rather than a timer per query: the query path stays cheap.
      this.#sweeper = setInterval(() => this.#sweep(), sweepIntervalMs(timeoutMs))
      this.#sweeper.unref()
    }
  }

  connect(): Promise<TimedClient> {
    if (this.#ended) return Promise.reject(new ReplicaPoolClosedError())
    return this.raw.connect().then(this.#wrap, this.#notConnected)
  }

  /**
   * Runs one statement on a pooled connection and gives the connection back:
   * a routed single read. The same checkout, time limit and release as
   * `connect()` then `run()`, through pg's callbacks: one promise from
   * checkout to answer instead of six, whose ticks and allocations were most
   * of the pool's own cost per read. A failure's stack is taken again where
   * the caller awaits it, as pg does, so it leads back to the application.
   */
  query(sql: string, parameters: readonly unknown[]): Promise<PgResult> {
    if (this.#ended) return Promise.reject(new ReplicaPoolClosedError())
    // pg's pool may hand the connection over in the context of whoever released it.
    const caller = this.#tracing?.context()
    return new Promise<PgResult>((resolve, reject) => {
      this.raw.connect((connectError, raw) => {
        let client: TimedClient
        try {
          if (connectError) this.#notConnected(connectError)
          client = this.#wrap(raw!)
        } catch (error) {
          reject(error)
          return
        }
        client.send(sql, parameters, (error, result) => {
          client.release()
          if (error === undefined) resolve(result!)
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the statement's error as send() reported it, passed on
          else reject(error)
        }, caller)
      })
    }).catch(restack)
  }

  /**
   * Closes the pool. Work holding or waiting for a connection gets up to
   * `graceMs` to finish (the pool keeps serving it); then every connection
   * still checked out, busy or between a transaction's statements, is closed
   * under its holder, and connections handed out later are refused.
   */
  end(graceMs = 0): Promise<void> {
    this.#ending ??= this.#end(graceMs)
    return this.#ending
  }

  async #end(graceMs: number): Promise<void> {
    if (graceMs > 0) await raceTimeout(this.#drained(), graceMs, () => undefined)
    this.#ended = true
    const ended = this.raw.end()
    // pg-pool serves no waiter once ending: each would wait out its connect timeout. Fail them now.
    const waiting = (this.raw as unknown as { _pendingQueue?: { callback?: (error: Error) => void }[] })._pendingQueue
    if (Array.isArray(waiting)) for (const waiter of waiting.splice(0)) waiter.callback?.(new ReplicaPoolClosedError())
    for (const client of this.#all) client.closeIfCheckedOut(new ReplicaPoolClosedError('under-query'))
    // pg-pool lets go of a connection only when its holder releases it, which
    // a holder stuck elsewhere may never do; its socket is closed already.
    await raceTimeout(ended, RELEASE_WAIT_MS, () => undefined)
    clearInterval(this.#sweeper)
  }

  /** Resolves once no connection is checked out, being opened or waited for. */
  #drained(): Promise<void> {
    const raw = this.raw
    return new Promise((resolve) => {
      const check = (): void => {
        if (raw.totalCount !== raw.idleCount || raw.waitingCount !== 0) return
        raw.off('release', later)
        raw.off('remove', later)
        this.#drainCheck = undefined
        resolve()
      }
      // pg-pool announces a release before it has put the connection back (or handed it to a waiter).
      const later = (): void => void setImmediate(check)
      raw.on('release', later)
      raw.on('remove', later)
      // A connection that failed to open, or a wait that timed out, leaves the pool without any event.
      this.#drainCheck = later
      check()
    })
  }

  readonly #notConnected = (error: unknown): never => {
    this.#drainCheck?.()
    throw this.#ended && isPoolWaitTimeout(error) ? new ReplicaPoolClosedError() : error
  }

  /**
   * Closes every connection checked out on this server, whether a query or a
   * stream runs on it or a transaction waits between statements; returns how
   * many. For a server found dead: what waits on it would only wait.
   */
  abortInFlight(): number {
    let aborted = 0
    for (const client of this.#all) if (client.closeIfCheckedOut(undefined)) aborted++
    return aborted
  }

  readonly #wrap = (client: pg.PoolClient): TimedClient => {
    // A connection that was still being opened when the pool closed.
    if (this.#ended) {
      client.release(new Error('the replica pool is closed'))
      throw new ReplicaPoolClosedError()
    }
    let wrapper = this.#wrappers.get(client)
    if (!wrapper) {
      wrapper = new TimedClient(client, this.#backend, this.#timeoutMs, this.#tracing)
      this.#wrappers.set(client, wrapper)
      this.#all.add(wrapper)
    }
    wrapper.checkOut()
    return wrapper
  }

  #sweep(): void {
    const deadline = performance.now() - this.#timeoutMs
    for (const client of this.#all) client.expireIfOlder(deadline)
  }
}

/** The result shape of a pg query, as far as routing needs it. */
export interface PgResult {
  readonly command: string
  readonly rowCount: number | null
  readonly rows: unknown[]
}

/** A pooled connection whose queries can be timed out or aborted by closing its socket. */
export class TimedClient implements PostgresPoolClient {
  readonly #client: pg.PoolClient
  readonly #backend: string
  readonly #timeoutMs: number
  readonly #tracing: QueryTracing | undefined
  #broken = false
  #checkedOut = false
  /** When the query in flight started (performance.now()), or 0. */
  #since = 0
  /** Why the pool closed this connection (when it gave a reason): what its query in flight and later statements fail with. */
  #closedWith: Error | undefined

  constructor(client: pg.PoolClient, backend: string, timeoutMs: number, tracing?: QueryTracing) {
    this.#client = client
    this.#backend = backend
    this.#timeoutMs = timeoutMs
    this.#tracing = tracing
  }

  checkOut(): void {
    this.#broken = false
    this.#closedWith = undefined
    this.#checkedOut = true
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- stands in for pg's overloaded query (a promise, or the submittable passed in), as Kysely's PostgresPoolClient types it
  query(...args: unknown[]): any {
    const [sql, parameters] = args as [unknown, readonly unknown[] | undefined]
    // A cursor (streaming) is a submittable object, passed through as is.
    if (typeof sql !== 'string') return (this.#client.query as (q: unknown) => unknown)(sql)
    return this.run(sql, parameters)
  }

  /** Runs one statement; fails with `QueryTimeoutError` when the sweep closed its connection for taking too long. */
  run(sql: string, parameters: readonly unknown[] | undefined): Promise<PgResult> {
    return new Promise<PgResult>((resolve, reject) => {
      this.send(sql, parameters, (error, result) => {
        if (error === undefined) resolve(result!)
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the statement's error as send() reported it, passed on
        else reject(error)
      })
    }).catch(restack)
  }

  /**
   * Runs one statement and calls `done` with its error or its result, once.
   * Closed by the pool with a reason (a timeout, the pool closing), the
   * connection fails it with that reason at once, as it does later statements
   * of its holder. Traced as a child of `caller` (default: the active context).
   */
  send(sql: string, parameters: readonly unknown[] | undefined, done: (error: unknown, result?: PgResult) => void, caller?: Context): void {
    if (this.#broken && this.#closedWith) return done(this.#closedWith)
    const tracing = this.#tracing
    const span = tracing?.start(sql, caller ?? tracing.context())
    let answered = false
    const answer = (error: unknown, result?: PgResult): void => {
      answered = true
      this.#since = 0
      if (span) tracing!.end(span, error ? (this.#closedWith ?? error) : undefined)
      // Closing the socket fails the query in flight (pg fails it when the stream closes); the reason the pool closed it wins.
      if (error) done(this.#closedWith ?? error)
      else done(undefined, result)
    }
    try {
      this.#client.query(sql, parameters as unknown[], answer)
    } catch (error) {
      // pg throws at once for a parameter it cannot serialise: the statement's failure.
      if (!answered) answer(error)
      return
    }
    // Timed from the moment pg has written the statement (it answers on a later tick): read
    // here, the clock costs the query nothing, as the server is working meanwhile.
    if (!answered) this.#since = performance.now()
  }

  /** Gives the connection back; `discard` (as pg takes it: true or an Error) closes it instead, as Kysely asks after a failed ROLLBACK. */
  release(discard?: boolean | Error): void {
    this.#checkedOut = false
    // A destroyed connection goes back as broken, so the pool drops it and frees the slot.
    this.#client.release(this.#broken ? new Error('connection closed by the replica pool') : discard)
  }

  /** Fails the query in flight with QueryTimeoutError if it started before `deadline`. */
  expireIfOlder(deadline: number): void {
    if (this.#since !== 0 && this.#since < deadline && !this.#broken) this.#close(new QueryTimeoutError(this.#backend, this.#timeoutMs))
  }

  /**
   * Closes the socket of a checked-out connection, whether a query runs on it
   * or its holder is between statements; `error` (if given) is what its query
   * and later statements fail with. False when it was not checked out.
   */
  closeIfCheckedOut(error: Error | undefined): boolean {
    if (!this.#checkedOut || this.#broken) return false
    this.#close(error)
    return true
  }

  #close(error: Error | undefined): void {
    this.#broken = true
    this.#closedWith = error
    ;(this.#client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
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
