import { CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely'
import type { Backend } from '../../src/balancing/backend.js'
import { BackendSet } from '../../src/balancing/backend-set.js'
import { createStrategy } from '../../src/balancing/create-strategy.js'
import { LatencyWindow } from '../../src/balancing/latency-window.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/plugin-api.js'
import type { MessageContext } from '../../src/routemq/plugin-api.js'
import { currentMessage } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { SummarisedWarning } from '../../src/routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { HealthCheckDefinition, HealthCheckSource } from '../../src/health/health-check.js'
import type { MeasuredPool, PoolMetricsSnapshot, RequestObserved } from '../../src/metrics/measured-pool.js'
import { ConsistencyTracker, PENDING_POSITION, UNKNOWN_POSITION } from './consistency-tracker.js'
import { isConnectionError, isPoolWaitTimeout, isReadOnlyRefusal, isRetryableReadFailure, isSessionOnlyError } from './connection-errors.js'
import { currentScope } from './database-scope.js'
import { NoReplicaAvailableError } from './errors/no-replica-available-error.js'
import { isQueryTimeoutError } from './errors/query-timeout-error.js'
import { isReplicaPoolClosedError, ReplicaPoolClosedError } from './errors/replica-pool-closed-error.js'
import { WriteInReadOnlyScopeError } from './errors/write-in-read-only-scope-error.js'
import { parseLsn } from './lsn.js'
import { createPgBackend, probeWithin, runOn, serverStatementTimeoutMs, type PgBackend } from './pg-backend.js'
import { PrimaryTracker } from './primary-tracker.js'
import { ReadRouter } from './read-router.js'
import { ReplicaProber } from './replica-prober.js'
import { formatLsn } from './write-position.js'
import { toQueryResult } from './query-result.js'
import { queryKind, type QueryKind } from './query-kind.js'
import type { PinnedConnection } from './routing-connection.js'
import { resolveReplicaPoolOptions, type ReplicaPoolOptions, type ResolvedReplicaPoolOptions } from './replica-pool-options.js'
import { metricsSnapshotOf, replicaPoolChecks, statsOf, type Counter, type PoolInsides, type QueryServed, type ReplicaPoolStats } from './replica-pool-report.js'

export type { QueryServed, ReplicaPoolStats, ReplicaStatus } from './replica-pool-report.js'

/** What a read must see: a WAL position to have replayed, the primary itself, or writes whose position is still to be asked for. */
interface ReadNeed {
  readonly needLsn: bigint | undefined
  readonly primaryOnly: boolean
  /** Set when the scope's last writes have no position yet: asking the primary gives one that covers them. */
  readonly pendingSeq?: number
}

/** How often the primary's WAL position is sampled for the lag history. */
const SAMPLE_INTERVAL_MS = 100

const NO_NEED: ReadNeed = Object.freeze({ needLsn: undefined, primaryOnly: false })
const PRIMARY_ONLY: ReadNeed = Object.freeze({ needLsn: undefined, primaryOnly: true })

let primaryOfPool: (pool: ReplicaPool) => PrimaryTracker

/** The pool's primary tracker, for the migrations at start (which candidates failed, and why); not for users. */
export function primaryTrackerOf(pool: ReplicaPool): PrimaryTracker {
  return primaryOfPool(pool)
}

/**
 * A PostgreSQL primary and its replicas as one pool: reads go to a healthy,
 * fresh-enough replica chosen by the balancing engine, writes to the primary.
 * Probes every second read each server's recovery state and WAL positions
 * (and the replication heartbeat), so lagging replicas get no reads and a
 * promoted replica is found as the new primary. A read that fails on a
 * replica for a connection reason is retried elsewhere, then on the primary.
 *
 * @example
 * const pool = await ReplicaPool.create({ primary: PRIMARY_URL, replicas: [REPLICA_1, REPLICA_2] })
 * const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
 */
export class ReplicaPool implements HealthCheckSource, MeasuredPool {
  /** The `pool` label of its metrics. */
  readonly metricsLabel = 'postgres'
  readonly #options: ResolvedReplicaPoolOptions
  readonly #log: Logger
  /** Per replica: each read in flight fails when one stops; one line per episode, ended when it is healthy again. */
  readonly #readFailed: SummarisedWarning
  readonly #positionFailed: SummarisedWarning
  readonly #idleFailed: SummarisedWarning
  readonly #primary: PrimaryTracker
  /** Every candidate primary. */
  readonly #primaryBackends: readonly PgBackend[]
  readonly #replicas: BackendSet<PgBackend>
  readonly #prober: ReplicaProber
  readonly #router: ReadRouter<PgBackend>

  static {
    primaryOfPool = (pool) => pool.#primary
  }
  readonly #consistency: ConsistencyTracker
  readonly #unknownHorizonMs: number
  readonly #served: TypedEvent<QueryServed>
  readonly #counts: Record<Counter, number> = { reads: 0, writes: 0, readRetries: 0, fallbacksToPrimary: 0, consistentReads: 0, consistentReadsOnReplicas: 0, positionQuestions: 0 }
  /** Reads sent to the primary because the replicas they were tried on failed, for the failover metric. */
  #failedOverReads = 0
  /** The primary's health, a replica's, or the set of readable replicas may have changed. */
  readonly #healthChanged = new TypedEvent<void>()
  #primaryQueries = 0
  #primaryErrors = 0
  readonly #primaryLatencies = new LatencyWindow()
  #timer: NodeJS.Timeout | undefined
  /** Samples the primary's WAL position between probes, for lag as it is under uneven writes. */
  #sampler: NodeJS.Timeout | undefined
  #sampling = false
  #probing: Promise<void> | undefined
  #closed = false
  #closing: Promise<void> | undefined
  /** Writes marked pending so far: a position asked for after the n-th covers the first n. */
  #writeSeq = 0
  /** The position question in flight, and the writes it covers. */
  #asking: { readonly seq: number; readonly answer: Promise<bigint | undefined> } | undefined
  /** The question to send when the one in flight ends, for writes marked after it was sent. */
  #nextAsking: Promise<bigint | undefined> | undefined
  /** Queries and acquisitions accepted and not yet settled. */
  #inFlight = 0
  #allSettled: (() => void) | undefined

  private constructor(options: ResolvedReplicaPoolOptions, primaries: PgBackend[], replicas: PgBackend[], logger: Logger, idleFailed: SummarisedWarning) {
    this.#options = options
    this.#log = logger
    this.#idleFailed = idleFailed
    this.#readFailed = new SummarisedWarning(logger, 'read failed on a replica; trying elsewhere')
    this.#positionFailed = new SummarisedWarning(logger, 'could not read the WAL position after a write; its scope reads from the primary')
    const { rise, fall, probeIntervalMs, probeTimeoutMs } = options.health
    this.#primaryBackends = primaries
    this.#primary = new PrimaryTracker(primaries, { rise, fall, probeIntervalMs, probeTimeoutMs, heartbeatTable: options.heartbeatTable }, logger, () => this.#healthChanged.emit())
    this.#replicas = new BackendSet(
      replicas.map((backend, i) => ({ id: backend.id, target: backend, region: backend.region, weight: options.replicas[i]!.weight })),
      {
        strategy: createStrategy(options.strategy),
        health: { rise: options.health.rise, fall: options.health.fall },
        onListenerError: (error) => logger.error('a replica pool listener threw', { error }),
      },
    )
    this.#prober = new ReplicaProber(this.#replicas, this.#primary, { probeTimeoutMs, maxLagMs: options.maxLagMs, maxLagBytes: options.maxLagBytes }, logger)
    const prober = this.#prober
    this.#router = new ReadRouter(
      {
        set: this.#replicas,
        position: (replica) => prober.of(replica).replayLsn,
        lagMs: (replica) => prober.of(replica).lagMs,
        ask: (replica, timeoutMs) => prober.positionNow(replica, timeoutMs),
      },
      { region: options.region, waitMs: options.consistency.mode === 'lsn' ? options.consistency.waitMs : 0 },
    )
    this.#replicas.onStateChange(({ backend, to }) => {
      // Queries still waiting on a server found dead fail now and are retried elsewhere.
      if (to === 'unhealthy') {
        const aborted = backend.target.timed.abortInFlight()
        this.#log.warn('replica unhealthy; reads go elsewhere', { replica: backend.id, abortedQueries: aborted })
      } else if (to === 'healthy') {
        // Healthy at start, or back: good news, not a warning.
        this.#readFailed.end(backend.id)
        this.#log.info('replica healthy', { replica: backend.id })
      }
      this.#healthChanged.emit()
    })
    // How long a write of unknown outcome may still take effect: the server stops it at its statement_timeout.
    this.#unknownHorizonMs = options.queryTimeoutMs > 0 ? serverStatementTimeoutMs(options.queryTimeoutMs) : Number.POSITIVE_INFINITY
    this.#consistency = new ConsistencyTracker(options.consistency.maxKeys, this.#unknownHorizonMs)
    this.#served = new TypedEvent((error) => logger.error('a query listener threw', { error }))
  }

  /** Creates the pools, probes every server once (so the primary is known) and starts probing. */
  static async create(options: ReplicaPoolOptions): Promise<ReplicaPool> {
    const resolved = resolveReplicaPoolOptions(options)
    const logger = safeLogger(options.logger ?? silentLogger)
    // A server stopping fails every idle connection of its pool at once.
    const idleFailed = new SummarisedWarning(logger, 'idle database connection failed')
    const make = (server: ResolvedReplicaPoolOptions['primaries'][number], readOnly: boolean) =>
      createPgBackend({
        readOnly,
        id: server.id,
        connectionString: server.connectionString,
        region: server.region,
        poolSize: resolved.poolSize,
        connectTimeoutMs: resolved.connectTimeoutMs,
        idleTimeoutMs: 10_000,
        queryTimeoutMs: resolved.queryTimeoutMs,
        probeTimeoutMs: resolved.health.probeTimeoutMs,
        cursor: resolved.cursor,
        onPoolError: (backend, error) => idleFailed.record({ backend, error }, backend),
      })
    const primaries = await Promise.all(resolved.primaries.map((server) => make(server, false)))
    const replicas = await Promise.all(resolved.replicas.map((server) => make(server, true)))
    const pool = new ReplicaPool(resolved, primaries, replicas, logger, idleFailed)
    await pool.#probeAll()
    pool.#schedule()
    if (replicas.length > 0) {
      pool.#sampler = setInterval(() => pool.#samplePrimary(), SAMPLE_INTERVAL_MS)
      pool.#sampler.unref()
    }
    return pool
  }

  /** Whether `.stream()` works: the `cursor` option was given. */
  get canStream(): boolean {
    return this.#options.cursor !== undefined
  }

  /** Every query's server, role, kind and duration: for tracing and debugging. */
  onQuery(listener: (served: QueryServed) => void): Disposer {
    return this.#served.on(listener)
  }

  /** Each single statement (as `onQuery` reports them), for metrics. */
  onRequest(listener: (request: RequestObserved) => void): Disposer {
    return this.#served.on((served) => listener({ backend: served.backend, durationMs: served.durationMs, failed: served.error !== undefined }))
  }

  /** The primary and replicas up or down, replica lag and latency, and reads moved to another server after a failure, for metrics. */
  metricsSnapshot(): PoolMetricsSnapshot {
    return metricsSnapshotOf(this.#insides())
  }

  /** See `replicaPoolChecks`: `primary` (critical), `replicas` and `replica/<id>`, from what the probes found. */
  healthChecks(): readonly HealthCheckDefinition[] {
    return replicaPoolChecks(this.#insides(), (recheck) => this.#healthChanged.on(recheck), this.#options.health.probeIntervalMs)
  }

  get stats(): ReplicaPoolStats {
    return statsOf(this.#insides())
  }

  #insides(): PoolInsides {
    return {
      primary: this.#primary,
      primaryBackends: this.#primaryBackends,
      replicas: this.#replicas,
      prober: this.#prober,
      primaryLatencies: this.#primaryLatencies,
      primaryQueries: this.#primaryQueries,
      primaryErrors: this.#primaryErrors,
      counts: this.#counts,
      failedOverReads: this.#failedOverReads,
    }
  }

  /** Runs one query outside a transaction, on the server the routing rules choose. */
  // Not async: an async function returning #read's promise would cost the hot path two more ticks to adopt it.
  execute<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    if (this.#closed) return Promise.reject(new ReplicaPoolClosedError())
    const kind = queryKind(compiled.query)
    const scope = currentScope()
    if (scope?.mode === 'read-only') {
      if (kind === 'write') return Promise.reject(new WriteInReadOnlyScopeError(`A ${compiled.query.kind.replace(/Node$/, '')}`))
      return this.#read(compiled, kind, true)
    }
    if (scope?.mode === 'write' || kind !== 'read') return this.#write(compiled, kind)
    return this.#read(compiled, kind, false)
  }

  /**
   * A connection held for a transaction (`kind` 'transaction', the default)
   * or a stream of one query of `kind`. On a replica inside a read-only scope
   * and for a stream of a plain read outside a write scope; else on the
   * primary. When no replica can serve: a read-only scope falls to the
   * primary (read only) only for a consistent read after its own write, a
   * plain read as a single read would (`fallbackToPrimary`). Give it back
   * with `backend.driver.releaseConnection(connection)`, then call `done` if
   * set (`RoutingConnection.release()` does both).
   */
  async acquire(kind: QueryKind | 'transaction' = 'transaction'): Promise<PinnedConnection> {
    // Accepted work: close() lets it finish within its grace period.
    this.#inFlight++
    try {
      if (this.#closed) throw new ReplicaPoolClosedError()
      const scope = currentScope()?.mode
      if (scope === 'read-only' && kind === 'write') throw new WriteInReadOnlyScopeError('A streamed write')
      if (scope !== 'read-only' && (kind !== 'read' || scope === 'write')) {
        const primary = this.#primary.require()
        return { backend: primary, role: 'primary', readOnly: false, connection: await this.#connectPrimary(primary), done: undefined }
      }
      const message = currentMessage()
      const { needLsn, primaryOnly } = await this.#withPosition(this.#consistencyNeed(message))
      const tried = new Set<Backend<PgBackend>>()
      for (let attempt = 0; !primaryOnly && attempt <= this.#options.readRetries; attempt++) {
        const replica = await this.#router.pick(this.#prober.readable, tried, needLsn, messageRegion(message))
        if (!replica) break
        tried.add(replica)
        // Counted as outstanding on its replica, as a single read is, until it is released.
        const done = replica.begin()
        try {
          const connection = await replica.target.driver.acquireConnection()
          if (needLsn !== undefined) this.#consistentOnReplica()
          return { backend: replica.target, role: 'replica', readOnly: true, connection, done }
        } catch (error) {
          done()
          if (!this.#worthAnother(replica, error)) throw error
        }
      }
      if (primaryOnly || needLsn !== undefined) this.#counts.consistentReads++
      else if (scope === 'read-only' || !this.#options.fallbackToPrimary) throw new NoReplicaAvailableError('every replica is down or lagging')
      else this.#counts.fallbacksToPrimary++
      const primary = this.#primary.require()
      return { backend: primary, role: 'primary', readOnly: scope === 'read-only', connection: await this.#connectPrimary(primary), done: undefined }
    } finally {
      this.#settled()
    }
  }

  async #connectPrimary(primary: PgBackend): Promise<DatabaseConnection> {
    try {
      return await primary.driver.acquireConnection()
    } catch (error) {
      if (isConnectionError(error)) throw this.#primary.failed(error, primary)
      throw error
    }
  }

  /**
   * A COMMIT on the primary failed. When its outcome is unknown (the
   * connection was lost, timed out or closed under it), reads of the scope
   * must not trust a replica for it; a lost connection is reported as
   * `PrimaryUnavailableError` (mid-query), as a single write's would be.
   * Returns the error to throw.
   */
  commitFailed(error: unknown, backend: PgBackend): unknown {
    if (this.#unknownOutcome(error)) this.#noteUnknownWrite()
    return isConnectionError(error) ? this.#primary.failed(error, backend, true) : error
  }

  #unknownOutcome(error: unknown): boolean {
    return isConnectionError(error) || isQueryTimeoutError(error) || (isReplicaPoolClosedError(error) && error.when === 'under-query')
  }

  #noteUnknownWrite(): void {
    if (this.#options.consistency.mode !== 'off' && this.#consistency.inScope) this.#consistency.noteWrite({ lsn: UNKNOWN_POSITION, at: Date.now() })
  }

  /** After a transaction committed on the primary: remember it, for read-your-writes. */
  noteCommit(): void {
    this.#markWrite()
  }

  /**
   * The WAL position reads in the running code must see (its message's and
   * consistency key's last write, or the position its message carried),
   * written as PostgreSQL writes it; `undefined` when there is none, when
   * consistency is not `'lsn'`, or when the last write's outcome is unknown.
   * `LoadBalancingModule` adds it to what the app publishes as the
   * `routemq-wal-position` user property (`WRITE_POSITION_PROPERTY`). A
   * write whose position was not asked for yet is asked for now.
   *
   * @example
   * app.addPublishProperties(async () => { const at = await pool.writePosition(); return at ? { [WRITE_POSITION_PROPERTY]: at } : undefined })
   */
  async writePosition(): Promise<string | undefined> {
    if (this.#options.consistency.mode !== 'lsn') return undefined
    const mark = this.#consistency.lastWrite()
    if (mark?.lsn === undefined || mark.lsn === UNKNOWN_POSITION) return undefined
    if (mark.lsn !== PENDING_POSITION) return formatLsn(mark.lsn)
    const lsn = await this.#positionCovering(mark.seq!)
    if (lsn === undefined) return undefined
    this.#consistency.settle(mark.seq!, lsn)
    return formatLsn(lsn)
  }

  /**
   * Stops probing and closes every connection. New queries are refused with
   * `ReplicaPoolClosedError` at once; those in flight get `closeTimeoutMs` to
   * finish before their connections are closed under them. Resolves within
   * about `closeTimeoutMs` plus a second (a probe round in progress, closing
   * connections).
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    clearInterval(this.#sampler)
    const deadline = performance.now() + this.#options.closeTimeoutMs
    // Queries accepted before close() may still be choosing a server, or retrying on another one.
    if (this.#inFlight > 0) await raceTimeout(new Promise<void>((resolve) => (this.#allSettled = resolve)), this.#options.closeTimeoutMs, () => undefined)
    await this.#probing?.catch(() => undefined)
    await this.#primary.close()
    this.#readFailed.endAll()
    this.#positionFailed.endAll()
    this.#idleFailed.endAll()
    const backends = [...this.#primaryBackends, ...this.#replicas.backends.map((b) => b.target)]
    // Then transactions still holding connections; probe connections last, since reads finishing meanwhile may ask a replica how far it has replayed.
    const grace = Math.max(0, deadline - performance.now())
    await Promise.all(backends.map((backend) => backend.timed.end(grace)))
    await Promise.all(backends.map((backend) => backend.probePool.end()))
  }

  #consistentOnReplica(): void {
    this.#counts.consistentReads++
    this.#counts.consistentReadsOnReplicas++
  }

  #settled(): void {
    if (--this.#inFlight === 0 && this.#allSettled) {
      this.#allSettled()
      this.#allSettled = undefined
    }
  }

  async #write<R>(compiled: CompiledQuery, kind: QueryKind): Promise<QueryResult<R>> {
    // Accepted work: close() lets it finish within its grace period.
    this.#inFlight++
    try {
      const primary = this.#primary.require()
      this.#counts.writes++
      const started = performance.now()
      const connection = await this.#connectPrimary(primary)
      try {
        const result = await connection.executeQuery<R>(compiled)
        if (kind !== 'read') this.#markWrite()
        const durationMs = performance.now() - started
        this.#primaryQueries++
        this.#primaryLatencies.record(durationMs)
        if (this.#served.listenerCount > 0) this.#served.emit({ backend: primary.id, role: 'primary', kind, durationMs })
        return result
      } catch (error) {
        this.#primaryErrors++
        this.#served.emit({ backend: primary.id, role: 'primary', kind, durationMs: performance.now() - started, error })
          // The statement may have committed: reads of this scope must not trust a replica for it.
        if (kind !== 'read' && this.#unknownOutcome(error)) this.#noteUnknownWrite()
        if (isConnectionError(error)) throw this.#primary.failed(error, primary, true)
        throw error
      } finally {
        await primary.driver.releaseConnection(connection as never)
      }
    } finally {
      this.#settled()
    }
  }

  async #read<R>(compiled: CompiledQuery, kind: QueryKind, replicaOnly: boolean): Promise<QueryResult<R>> {
    // Accepted work: close() lets it finish within its grace period (hence `return await` below: the count ends when the work does).
    this.#inFlight++
    try {
      this.#counts.reads++
      // One look at the message scope per read: its consistency mark and its region.
      const message = currentMessage()
      let need = this.#consistencyNeed(message)
      if (need.pendingSeq !== undefined) need = await this.#withPosition(need)
      const { needLsn, primaryOnly } = need
      if (primaryOnly) {
        this.#counts.consistentReads++
        return await this.#primaryRead(compiled, kind, replicaOnly)
      }
      let tried: Set<Backend<PgBackend>> | undefined
      let lastError: unknown
      for (let attempt = 0; attempt <= this.#options.readRetries; attempt++) {
        const picked = this.#router.pick(this.#prober.readable, tried, needLsn, messageRegion(message))
        const replica = picked instanceof Promise ? await picked : picked
        if (!replica) break
        if (attempt > 0) this.#counts.readRetries++
        const probe = this.#prober.of(replica)
        const done = replica.begin()
        const started = performance.now()
        try {
          // Straight to the replica's pool, past Kysely's per-query connection object: this is the hot path.
          const result = toQueryResult<R>(await replica.target.timed.query(compiled.sql, compiled.parameters))
          const durationMs = performance.now() - started
          probe.queries++
          probe.latencies.record(durationMs)
          this.#replicas.reportSuccess(replica, durationMs)
          if (this.#served.listenerCount > 0) this.#served.emit({ backend: replica.id, role: 'replica', kind, durationMs })
          if (needLsn !== undefined) this.#consistentOnReplica()
          return result
        } catch (error) {
          probe.errors++
          ;(tried ??= new Set()).add(replica)
          this.#served.emit({ backend: replica.id, role: 'replica', kind, durationMs: performance.now() - started, error })
          // A replica refusing what turned out to be a write (nextval(), a lock in a subquery): nothing ran; the primary can take it.
          if (isReadOnlyRefusal(error)) {
            if (!replicaOnly) return await this.#write(compiled, 'write')
            throw new WriteInReadOnlyScopeError('A statement the server found to write', error)
          }
          // A slow read that timed out is not run again elsewhere unless its replica was found dead meanwhile.
          if (isQueryTimeoutError(error) && replica.state !== 'unhealthy') throw error
          if (!this.#worthAnother(replica, error)) throw error
          lastError = error
          this.#readFailed.record({ replica: replica.id, error }, replica.id)
        } finally {
          done()
        }
      }
      if (needLsn !== undefined) {
        // No replica has caught up with this scope's last write: the primary has it, and reading is no write.
        this.#counts.consistentReads++
        return await this.#primaryRead(compiled, kind, replicaOnly)
      }
      if (replicaOnly || !this.#options.fallbackToPrimary) {
        throw new NoReplicaAvailableError(tried ? 'every replica tried failed' : 'every replica is down or lagging', lastError)
      }
      this.#counts.fallbacksToPrimary++
      if (lastError !== undefined) this.#failedOverReads++
      return await this.#primaryRead(compiled, kind, replicaOnly)
    } finally {
      this.#settled()
    }
  }

  /**
   * A replica failed a read (or gave no connection for one): true when
   * another server may serve it. A failure that says the server is gone
   * ejects the replica; a full local pool, a read cancelled by replay or one
   * terminated session say nothing about the server's health.
   */
  #worthAnother(replica: Backend<PgBackend>, error: unknown): boolean {
    if (!isConnectionError(error) && !isPoolWaitTimeout(error) && !isQueryTimeoutError(error) && !isRetryableReadFailure(error)) return false
    if (isConnectionError(error) && !isSessionOnlyError(error)) this.#replicas.reportFailure(replica, { eject: true })
    return true
  }

  /** What the last write of this scope (`message`, and the consistency key in force) demands of a read: a WAL position to have replayed, or the primary itself. */
  #consistencyNeed(message: MessageContext | undefined): ReadNeed {
    if (this.#options.consistency.mode === 'off') return NO_NEED
    const mark = this.#consistency.lastWrite(message)
    if (!mark) return NO_NEED
    if (this.#options.consistency.mode === 'window') {
      return Date.now() - mark.at < this.#options.consistency.windowMs ? PRIMARY_ONLY : NO_NEED
    }
    if (mark.lsn === PENDING_POSITION) return { needLsn: undefined, primaryOnly: false, pendingSeq: mark.seq! }
    if (mark.lsn === UNKNOWN_POSITION) {
      // Once the write can no longer take effect, a primary position probed after that covers it.
      const primaryLsn = this.#primary.lsn
      if (primaryLsn !== undefined && this.#primary.lsnAt - (mark.unknownAt ?? mark.at) > this.#unknownHorizonMs) return { needLsn: primaryLsn, primaryOnly: false }
      return PRIMARY_ONLY
    }
    return { needLsn: mark.lsn, primaryOnly: false }
  }

  /**
   * A read served by the primary. From a read-only scope it runs in a
   * read-only transaction: raw SQL or a function with side effects must not
   * write there either (two more round trips, only for such reads).
   */
  async #primaryRead<R>(compiled: CompiledQuery, kind: QueryKind, readOnly: boolean): Promise<QueryResult<R>> {
    const primary = this.#primary.require()
    const started = performance.now()
    try {
      const result = await runOn(primary, (connection) => (readOnly ? inReadOnlyTransaction<R>(connection, compiled) : connection.executeQuery<R>(compiled)))
      this.#primaryQueries++
      this.#primaryLatencies.record(performance.now() - started)
      this.#served.emit({ backend: primary.id, role: 'primary', kind, durationMs: performance.now() - started })
      return result
    } catch (error) {
      this.#primaryErrors++
      if (isConnectionError(error)) throw this.#primary.failed(error, primary)
      if (readOnly && isReadOnlyRefusal(error)) throw new WriteInReadOnlyScopeError('A statement the server found to write', error)
      throw error
    }
  }

  /**
   * Remembers a write for read-your-writes, without asking where the WAL is:
   * a write no read or publish follows costs nothing more; the first that
   * needs it asks the primary once (`#positionCovering`).
   */
  #markWrite(): void {
    const mode = this.#options.consistency.mode
    if (mode === 'off' || !this.#consistency.inScope) return
    if (mode === 'window') return this.#consistency.noteWrite({ lsn: undefined, at: Date.now() })
    this.#consistency.noteWrite({ lsn: PENDING_POSITION, at: Date.now(), seq: ++this.#writeSeq })
  }

  /**
   * A read's need with the position of pending writes filled in: asked of the
   * primary unless no replica could serve the read anyway (then the primary
   * serves it, as for an unknown position).
   */
  async #withPosition(need: ReadNeed): Promise<ReadNeed> {
    if (need.pendingSeq === undefined) return need
    if (this.#prober.readable.length === 0) return PRIMARY_ONLY
    const lsn = await this.#positionCovering(need.pendingSeq)
    if (lsn === undefined) return PRIMARY_ONLY
    this.#consistency.settle(need.pendingSeq, lsn)
    return { needLsn: lsn, primaryOnly: false }
  }

  /**
   * The primary's WAL position now, which covers every write marked up to
   * `seq` (it is read after they finished). One question is in flight at a
   * time: reads needing a newer position meanwhile share the next one, sent
   * when it ends, so a busy app sends at most one per round trip and never
   * queues on the primary's probe connection. `undefined` when the primary
   * does not answer.
   */
  #positionCovering(seq: number): Promise<bigint | undefined> {
    const asking = this.#asking
    if (asking && asking.seq >= seq) return asking.answer
    if (asking) {
      // The next question is sent once this one ends, and covers every write marked by then.
      this.#nextAsking ??= asking.answer.then(() => {
        this.#nextAsking = undefined
        return this.#ask()
      })
      return this.#nextAsking
    }
    return this.#ask()
  }

  #ask(): Promise<bigint | undefined> {
    const primary = this.#primary.current
    if (!primary || !this.#primary.healthy) return Promise.resolve(undefined)
    const timeoutMs = this.#options.health.probeTimeoutMs
    this.#counts.positionQuestions++
    const question = probeWithin<{ lsn: string | null }>(primary, 'SELECT pg_current_wal_insert_lsn()::text AS lsn', timeoutMs).then(
      (rows) => {
        const lsn = parseLsn(rows[0]?.lsn)
        if (lsn !== undefined) this.#primary.noteWritePosition(lsn)
        return lsn
      },
      (error: unknown) => {
        // The writes themselves succeeded; without their position, their scope reads from the primary.
        this.#positionFailed.record({ error })
        return undefined
      },
    )
    const entry = { seq: this.#writeSeq, answer: question.finally(() => this.#asking === entry && (this.#asking = undefined)) }
    this.#asking = entry
    return entry.answer
  }

  /**
   * One WAL position of the primary for the lag history: with samples 100 ms
   * apart, a replica's position is placed in time to within the unevenness
   * of 100 ms of writes, however bursty they are (one tiny query on the probe
   * connection, skipped while the last is unanswered or the primary is down).
   */
  #samplePrimary(): void {
    const primary = this.#primary.current
    if (this.#sampling || this.#closed || !primary || !this.#primary.healthy) return
    this.#sampling = true
    probeWithin<{ lsn: string | null }>(primary, 'SELECT pg_current_wal_insert_lsn()::text AS lsn', this.#options.health.probeTimeoutMs)
      .then((rows) => {
        const lsn = parseLsn(rows[0]?.lsn)
        if (lsn !== undefined) this.#primary.noteWritePosition(lsn)
      })
      .catch((error: unknown) => this.#log.debug('could not sample the primary WAL position', { error }))
      .finally(() => (this.#sampling = false))
  }

  #schedule(): void {
    if (this.#closed) return
    this.#timer = setTimeout(() => {
      this.#probing = this.#probeAll().catch((error: unknown) => this.#log.error('probing failed unexpectedly', { error }))
      void this.#probing.then(() => this.#schedule())
    }, this.#options.health.probeIntervalMs)
    // Probing alone must not keep the process alive; close() the pool (or destroy the Kysely instance) to stop it.
    this.#timer.unref()
  }

  async #probeAll(): Promise<void> {
    await this.#primary.probe()
    if (await this.#prober.probeAll()) this.#healthChanged.emit()
  }
}

/** The region the geo plugin found for the message, if any. */
function messageRegion(message: MessageContext | undefined): string | undefined {
  return (message?.state as { geo?: { region?: string } } | undefined)?.geo?.region
}

async function inReadOnlyTransaction<R>(connection: DatabaseConnection, compiled: CompiledQuery): Promise<QueryResult<R>> {
  await connection.executeQuery(CompiledQuery.raw('start transaction read only'))
  try {
    const result = await connection.executeQuery<R>(compiled)
    await connection.executeQuery(CompiledQuery.raw('commit'))
    return result
  } catch (error) {
    await connection.executeQuery(CompiledQuery.raw('rollback')).catch(() => undefined)
    throw error
  }
}
