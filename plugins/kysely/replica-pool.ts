import { CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely'
import { Backend } from '../../src/balancing/backend.js'
import { BackendSet } from '../../src/balancing/backend-set.js'
import { createStrategy } from '../../src/balancing/create-strategy.js'
import { LatencyWindow } from '../../src/balancing/latency-window.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/logger.js'
import type { MessageContext } from '../../src/routemq/message-context.js'
import { currentMessage } from '../../src/routemq/message-scope.js'
import { raceTimeout } from '../../src/routemq/race-timeout.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { HealthCheckDefinition, HealthCheckSource } from '../../src/health/health-check.js'
import type { MeasuredPool, PoolMetricsSnapshot, RequestObserved } from '../../src/metrics/measured-pool.js'
import { scrubSecrets } from '../../src/health/scrub-secrets.js'
import { ConsistencyTracker, UNKNOWN_POSITION } from './consistency-tracker.js'
import { isConnectionError, isPoolWaitTimeout, isReadOnlyRefusal, isRetryableReadFailure, isSessionOnlyError } from './connection-errors.js'
import { currentScope } from './database-scope.js'
import { isNoReplicaAvailableError, NoReplicaAvailableError } from './errors/no-replica-available-error.js'
import { isQueryTimeoutError } from './errors/query-timeout-error.js'
import { isPrimaryUnavailableError, PrimaryUnavailableError } from './errors/primary-unavailable-error.js'
import { isReplicaPoolClosedError, ReplicaPoolClosedError } from './errors/replica-pool-closed-error.js'
import { WriteInReadOnlyScopeError } from './errors/write-in-read-only-scope-error.js'
import { parseLsn } from './lsn.js'
import { WalHistory } from './wal-history.js'
import { createPgBackend, probeOn, runOn, serverStatementTimeoutMs, type PgBackend, type PgResult } from './pg-backend.js'
import { toQueryResult } from './query-result.js'
import { queryKind, type QueryKind } from './query-kind.js'
import type { PinnedConnection } from './routing-connection.js'
import { resolveReplicaPoolOptions, type ReplicaPoolOptions, type ResolvedReplicaPoolOptions } from './replica-pool-options.js'

/** Which server served a single statement (not one inside a transaction or a stream), for tracing. */
export interface QueryServed {
  readonly backend: string
  readonly role: 'primary' | 'replica'
  readonly kind: QueryKind
  readonly durationMs: number
  /** Set when the query failed. */
  readonly error?: unknown
}

/** A replica as the last probe saw it. */
export interface ReplicaStatus {
  readonly id: string
  readonly state: 'unknown' | 'healthy' | 'unhealthy'
  readonly inRecovery: boolean | undefined
  readonly lagMs: number | undefined
  readonly lagBytes: number | undefined
  readonly latencyMs: number | undefined
  /** 99th percentile of the last 1024 queries' durations. */
  readonly p99LatencyMs: number | undefined
  readonly outstanding: number
  readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
  readonly queries: number
  readonly errors: number
  readonly region: string | undefined
}

/** Counters and states, for metrics. */
export interface ReplicaPoolStats {
  readonly primary: {
    readonly id: string | undefined
    readonly healthy: boolean
    readonly queries: number
    readonly errors: number
    readonly p99LatencyMs: number | undefined
    /** The current primary's connection pool; zeros while none is known. */
    readonly connections: { readonly total: number; readonly idle: number; readonly waiting: number }
  }
  readonly replicas: readonly ReplicaStatus[]
  readonly reads: number
  readonly writes: number
  readonly readRetries: number
  readonly fallbacksToPrimary: number
  /** Reads sent to the primary (or a caught-up replica) because of an earlier write in their scope. */
  readonly consistentReads: number
}

interface ReplicaProbe {
  readonly latencies: LatencyWindow
  inRecovery: boolean | undefined
  replayLsn: bigint | undefined
  lagMs: number | undefined
  lagBytes: number | undefined
  queries: number
  errors: number
}

const NO_NEED = Object.freeze({ needLsn: undefined, primaryOnly: false })
const PRIMARY_ONLY = Object.freeze({ needLsn: undefined, primaryOnly: true })
/** How long a read waits to learn whether a replica caught up before going to the primary. */
const REPLAY_CHECK_MS = 50

type Counter = 'reads' | 'writes' | 'readRetries' | 'fallbacksToPrimary' | 'consistentReads'

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
  readonly #primaries: readonly PgBackend[]
  readonly #replicas: BackendSet<PgBackend>
  readonly #probes = new Map<Backend<PgBackend>, ReplicaProbe>()
  readonly #consistency: ConsistencyTracker
  readonly #unknownHorizonMs: number
  readonly #served: TypedEvent<QueryServed>
  readonly #counts: Record<Counter, number> = { reads: 0, writes: 0, readRetries: 0, fallbacksToPrimary: 0, consistentReads: 0 }
  /** Replay-position questions in flight, one per replica, shared by concurrent reads. */
  readonly #replayChecks = new Map<Backend<PgBackend>, Promise<bigint | undefined>>()
  /** Replicas in recovery and within the lag limits, as of the last probes. */
  #readable: Backend<PgBackend>[] = []
  #primary: PgBackend | undefined
  #primaryHealthy = false
  #primaryFailures = 0
  #primaryLsn: bigint | undefined
  /** When #primaryLsn was read (epoch ms). */
  #primaryLsnAt = 0
  /** The primary's WAL positions as the probes saw them, to tell a replica's lag in time without the heartbeat. */
  readonly #primaryHistory = new WalHistory(128)
  #splitBrain = false
  /** Reads sent to the primary because the replicas they were tried on failed, for the failover metric. */
  #failedOverReads = 0
  /** Why the last probe found no primary, for health bodies. */
  #primaryError: string | undefined
  /** The primary's health, a replica's, or the set of readable replicas may have changed. */
  readonly #healthChanged = new TypedEvent<void>()
  #primaryQueries = 0
  #primaryErrors = 0
  #primarySuccesses = 0
  #primaryEverHealthy = false
  #lastBeatAt = 0
  readonly #primaryLatencies = new LatencyWindow()
  #heartbeat = true
  #timer: NodeJS.Timeout | undefined
  #probing: Promise<void> | undefined
  #probingPrimary: Promise<void> | undefined
  #closed = false
  #closing: Promise<void> | undefined
  /** Queries and acquisitions accepted and not yet settled. */
  #inFlight = 0
  #allSettled: (() => void) | undefined

  private constructor(options: ResolvedReplicaPoolOptions, primaries: PgBackend[], replicas: PgBackend[], logger: Logger) {
    this.#options = options
    this.#log = logger
    this.#primaries = primaries
    this.#replicas = new BackendSet(
      replicas.map((backend, i) => ({ id: backend.id, target: backend, region: backend.region, weight: options.replicas[i]!.weight })),
      {
        strategy: createStrategy(options.strategy),
        health: { rise: options.health.rise, fall: options.health.fall },
        onListenerError: (error) => logger.error('a replica pool listener threw', { error }),
      },
    )
    for (const backend of this.#replicas.backends) {
      this.#probes.set(backend, { latencies: new LatencyWindow(), inRecovery: undefined, replayLsn: undefined, lagMs: undefined, lagBytes: undefined, queries: 0, errors: 0 })
    }
    this.#replicas.onStateChange(({ backend, to }) => {
      this.#log.warn(`replica ${to}`, { replica: backend.id })
      // Queries still waiting on a server found dead fail now and are retried elsewhere.
      if (to === 'unhealthy') {
        const aborted = backend.target.timed.abortInFlight()
        if (aborted > 0) this.#log.warn('aborted queries in flight on a dead replica', { replica: backend.id, aborted })
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
        onPoolError: (backend, error) => logger.warn('idle database connection failed', { backend, error }),
      })
    const primaries = await Promise.all(resolved.primaries.map((server) => make(server, false)))
    const replicas = await Promise.all(resolved.replicas.map((server) => make(server, true)))
    if (resolved.replicas.length > 0 && resolved.maxLagMs < 2 * resolved.health.probeIntervalMs) {
      logger.warn('maxLagMs is under twice health.probeIntervalMs: lag is measured once per probe, so under steady writes replicas may read as too far behind', {
        maxLagMs: resolved.maxLagMs,
        probeIntervalMs: resolved.health.probeIntervalMs,
      })
    }
    const pool = new ReplicaPool(resolved, primaries, replicas, logger)
    await pool.#probeAll()
    pool.#schedule()
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

  /** The primary and replicas up or down, replica lag, and reads moved to another server after a failure, for metrics. */
  metricsSnapshot(): PoolMetricsSnapshot {
    const backends: PoolMetricsSnapshot['backends'][number][] = this.#primaries.map((primary) => ({
      id: primary.id,
      up: primary === this.#primary && this.#primaryHealthy,
    }))
    for (const backend of this.#replicas.backends) {
      const probe = this.#probes.get(backend)!
      backends.push({
        id: backend.id,
        up: backend.state === 'healthy' && this.#readable.includes(backend),
        ...(probe.lagMs !== undefined ? { lagSeconds: probe.lagMs / 1000 } : {}),
        ...(probe.lagBytes !== undefined ? { lagBytes: probe.lagBytes } : {}),
      })
    }
    // Not every fallback to the primary: a pool without replicas, or with every replica lagging, sends reads there with nothing failing.
    return { backends, failovers: this.#counts.readRetries + this.#failedOverReads }
  }

  /**
   * The pool's checks, reading what its own probes found (no extra query),
   * run again at once whenever the probes see a change:
   * - `primary` (critical): a primary accepts writes. A write failing with
   *   `PrimaryUnavailableError` counts as its outage, for `healthGate`.
   * - `replicas` (not critical): at least one replica can serve reads
   *   (healthy and within the lag limits); `NoReplicaAvailableError` is its outage.
   * - `replica/<id>` (not critical): that replica is healthy and within the lag limits.
   */
  healthChecks(): readonly HealthCheckDefinition[] {
    const watch = (recheck: () => void): Disposer => this.#healthChanged.on(recheck)
    const common = { componentType: 'datastore', rise: 1, fall: 1, intervalMs: this.#options.health.probeIntervalMs, watch } as const
    const checks: HealthCheckDefinition[] = [
      {
        ...common,
        name: 'primary',
        critical: true,
        isOutage: isPrimaryUnavailableError,
        check: async () => {
          // A query that just lost the primary started a probe: answer from its result, not from before it.
          await this.#probingPrimary
          if (!this.#primaryHealthy) throw new Error(`no primary accepts writes: ${this.#primaryError ?? 'not found yet'}`)
        },
      },
    ]
    if (this.#replicas.backends.length === 0) return checks
    checks.push({
      ...common,
      name: 'replicas',
      critical: false,
      isOutage: isNoReplicaAvailableError,
      check: () => {
        if (this.#readable.length === 0) throw new Error('no replica is healthy and within the lag limits')
        return { observedValue: this.#readable.length, observedUnit: 'replicas' }
      },
    })
    for (const backend of this.#replicas.backends) {
      checks.push({
        ...common,
        name: `replica/${backend.id}`,
        critical: false,
        check: () => {
          const probe = this.#probes.get(backend)!
          if (backend.state === 'unknown') return { pending: true }
          if (backend.state === 'unhealthy') throw new Error('its probes fail')
          if (probe.inRecovery === false) throw new Error('it is not in recovery (promoted?), so it takes no reads')
          if (!this.#readable.includes(backend)) throw new Error(`it is behind by ${Math.round(probe.lagMs ?? 0)} ms / ${probe.lagBytes ?? '?'} bytes, past the lag limits`)
          return probe.lagMs === undefined ? undefined : { observedValue: Math.round(probe.lagMs), observedUnit: 'ms' }
        },
      })
    }
    return checks
  }

  get stats(): ReplicaPoolStats {
    return Object.freeze({
      primary: {
        id: this.#primary?.id,
        healthy: this.#primaryHealthy,
        queries: this.#primaryQueries,
        errors: this.#primaryErrors,
        p99LatencyMs: this.#primaryLatencies.percentile(0.99),
        connections: connectionCounts(this.#primary?.timed.raw),
      },
      replicas: this.#replicas.backends.map((backend) => {
        const probe = this.#probes.get(backend)!
        const pool = backend.target.timed.raw
        return {
          id: backend.id,
          state: backend.state,
          inRecovery: probe.inRecovery,
          lagMs: probe.lagMs,
          lagBytes: probe.lagBytes,
          latencyMs: backend.latencyMs,
          p99LatencyMs: probe.latencies.percentile(0.99),
          outstanding: backend.outstanding,
          connections: connectionCounts(pool),
          queries: probe.queries,
          errors: probe.errors,
          region: backend.region,
        }
      }),
      ...this.#counts,
    })
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
        const primary = this.#requirePrimary()
        return { backend: primary, role: 'primary', readOnly: false, connection: await this.#connectPrimary(primary), done: undefined }
      }
      const message = currentMessage()
      const { needLsn, primaryOnly } = this.#consistencyNeed(message)
      const tried = new Set<Backend<PgBackend>>()
      for (let attempt = 0; !primaryOnly && attempt <= this.#options.readRetries; attempt++) {
        const replica = await this.#pickReplica(tried, needLsn, message)
        if (!replica) break
        tried.add(replica)
        // Counted as outstanding on its replica, as a single read is, until it is released.
        const done = replica.begin()
        try {
          return { backend: replica.target, role: 'replica', readOnly: true, connection: await replica.target.driver.acquireConnection(), done }
        } catch (error) {
          done()
          if (!this.#worthAnother(replica, error)) throw error
        }
      }
      if (primaryOnly || needLsn !== undefined) this.#counts.consistentReads++
      else if (scope === 'read-only' || !this.#options.fallbackToPrimary) throw new NoReplicaAvailableError('every replica is down or lagging')
      else this.#counts.fallbacksToPrimary++
      const primary = this.#requirePrimary()
      return { backend: primary, role: 'primary', readOnly: scope === 'read-only', connection: await this.#connectPrimary(primary), done: undefined }
    } finally {
      this.#settled()
    }
  }

  async #connectPrimary(primary: PgBackend): Promise<DatabaseConnection> {
    try {
      return await primary.driver.acquireConnection()
    } catch (error) {
      if (isConnectionError(error)) throw this.#primaryFailed(error, primary)
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
    return isConnectionError(error) ? this.#primaryFailed(error, backend, true) : error
  }

  #unknownOutcome(error: unknown): boolean {
    return isConnectionError(error) || isQueryTimeoutError(error) || (isReplicaPoolClosedError(error) && error.when === 'under-query')
  }

  #noteUnknownWrite(): void {
    if (this.#options.consistency.mode !== 'off' && this.#consistency.inScope) this.#consistency.noteWrite({ lsn: UNKNOWN_POSITION, at: Date.now() })
  }

  /** After a transaction committed on the primary: remember where the WAL was, for read-your-writes. */
  async noteCommit(connection: DatabaseConnection): Promise<void> {
    await this.#markWrite(connection)
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
    const deadline = performance.now() + this.#options.closeTimeoutMs
    // Queries accepted before close() may still be choosing a server, or retrying on another one.
    if (this.#inFlight > 0) await raceTimeout(new Promise<void>((resolve) => (this.#allSettled = resolve)), this.#options.closeTimeoutMs, () => undefined)
    await this.#probing?.catch(() => undefined)
    await this.#probingPrimary
    const backends = [...this.#primaries, ...this.#replicas.backends.map((b) => b.target)]
    // Then transactions still holding connections; probe connections last, since reads finishing meanwhile may ask a replica how far it has replayed.
    const grace = Math.max(0, deadline - performance.now())
    await Promise.all(backends.map((backend) => backend.timed.end(grace)))
    await Promise.all(backends.map((backend) => backend.probePool.end()))
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
      const primary = this.#requirePrimary()
      this.#counts.writes++
      const started = performance.now()
      const connection = await this.#connectPrimary(primary)
      try {
        const result = await connection.executeQuery<R>(compiled)
        if (kind !== 'read') await this.#markWrite(connection)
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
        if (isConnectionError(error)) throw this.#primaryFailed(error, primary, true)
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
      const { needLsn, primaryOnly } = this.#consistencyNeed(message)
      if (primaryOnly) {
        this.#counts.consistentReads++
        return await this.#primaryRead(compiled, kind, replicaOnly)
      }
      let tried: Set<Backend<PgBackend>> | undefined
      let lastError: unknown
      for (let attempt = 0; attempt <= this.#options.readRetries; attempt++) {
        const picked = this.#pickReplica(tried, needLsn, message)
        const replica = picked instanceof Promise ? await picked : picked
        if (!replica) break
        if (attempt > 0) this.#counts.readRetries++
        const probe = this.#probes.get(replica)!
        const done = replica.begin()
        const started = performance.now()
        try {
          // Straight to the replica's pool, past Kysely's per-query connection object: this is the hot path.
          const client = await replica.target.timed.connect()
          let answer: PgResult
          try {
            answer = await client.run(compiled.sql, compiled.parameters)
          } finally {
            client.release()
          }
          const result = toQueryResult<R>(answer)
          const durationMs = performance.now() - started
          probe.queries++
          probe.latencies.record(durationMs)
          this.#replicas.reportSuccess(replica, durationMs)
          if (this.#served.listenerCount > 0) this.#served.emit({ backend: replica.id, role: 'replica', kind, durationMs })
          return result
        } catch (error) {
          probe.errors++
          ;(tried ??= new Set()).add(replica)
          this.#served.emit({ backend: replica.id, role: 'replica', kind, durationMs: performance.now() - started, error })
          // A replica refusing what turned out to be a write (nextval(), a lock in a subquery): nothing ran; the primary can take it.
          if (isReadOnlyRefusal(error)) {
            if (!replicaOnly) return this.#write(compiled, 'write')
            throw new WriteInReadOnlyScopeError('A statement the server found to write', error)
          }
          // A slow read that timed out is not run again elsewhere unless its replica was found dead meanwhile.
          if (isQueryTimeoutError(error) && replica.state !== 'unhealthy') throw error
          if (!this.#worthAnother(replica, error)) throw error
          lastError = error
          this.#log.warn('read failed on a replica; trying elsewhere', { replica: replica.id, error })
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
  #consistencyNeed(message: MessageContext | undefined): { readonly needLsn: bigint | undefined; readonly primaryOnly: boolean } {
    if (this.#options.consistency.mode === 'off') return NO_NEED
    const mark = this.#consistency.lastWrite(message)
    if (!mark) return NO_NEED
    if (this.#options.consistency.mode === 'window') {
      return Date.now() - mark.at < this.#options.consistency.windowMs ? PRIMARY_ONLY : NO_NEED
    }
    if (mark.lsn === UNKNOWN_POSITION) {
      // Once the write can no longer take effect, a primary position probed after that covers it.
      if (this.#primaryLsn !== undefined && this.#primaryLsnAt - (mark.unknownAt ?? mark.at) > this.#unknownHorizonMs) return { needLsn: this.#primaryLsn, primaryOnly: false }
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
    const primary = this.#requirePrimary()
    const started = performance.now()
    try {
      const result = await runOn(primary, (connection) => (readOnly ? inReadOnlyTransaction<R>(connection, compiled) : connection.executeQuery<R>(compiled)))
      this.#primaryQueries++
      this.#primaryLatencies.record(performance.now() - started)
      this.#served.emit({ backend: primary.id, role: 'primary', kind, durationMs: performance.now() - started })
      return result
    } catch (error) {
      this.#primaryErrors++
      if (isConnectionError(error)) throw this.#primaryFailed(error, primary)
      if (readOnly && isReadOnlyRefusal(error)) throw new WriteInReadOnlyScopeError('A statement the server found to write', error)
      throw error
    }
  }

  /**
   * A replica that may serve a read now: healthy, in recovery, within the lag
   * limits and, with `needLsn`, caught up with it. The probe's replay position
   * may be a second old, so a replica it shows behind is asked directly once.
   */
  #pickReplica(
    exclude: ReadonlySet<Backend<PgBackend>> | undefined,
    needLsn: bigint | undefined,
    message: MessageContext | undefined,
  ): Backend<PgBackend> | undefined | Promise<Backend<PgBackend> | undefined> {
    const messageRegion = (message?.state as { geo?: { region?: string } } | undefined)?.geo?.region
    const region = messageRegion ?? this.#options.region
    const prefer = region === undefined ? undefined : (backend: Backend<PgBackend>) => backend.region === region
    if (needLsn !== undefined) return this.#pickCaughtUp(exclude, needLsn, prefer)
    const picked = this.#replicas.pickAmong(this.#readable, exclude, prefer)
    // None in the message's region: the pool's own region is the next best.
    const home = this.#options.region
    if (picked && messageRegion !== undefined && picked.region !== messageRegion && home !== undefined && home !== messageRegion && picked.region !== home) {
      return this.#replicas.pickAmong(this.#readable, exclude, (backend) => backend.region === home) ?? picked
    }
    return picked
  }

  async #pickCaughtUp(
    exclude: ReadonlySet<Backend<PgBackend>> | undefined,
    needLsn: bigint,
    prefer: ((backend: Backend<PgBackend>) => boolean) | undefined,
  ): Promise<Backend<PgBackend> | undefined> {
    const caughtUp: Backend<PgBackend>[] = []
    const behind: Backend<PgBackend>[] = []
    for (const backend of this.#readable) {
      const replay = this.#probes.get(backend)!.replayLsn
      if (replay !== undefined && replay >= needLsn) caughtUp.push(backend)
      else behind.push(backend)
    }
    const fit = this.#replicas.pickAmong(caughtUp, exclude, prefer)
    if (fit || behind.length === 0) return fit
    // The probe's replay position may be a second old: ask one replica it shows behind directly.
    const candidate = this.#replicas.pickAmong(behind, exclude, prefer)
    if (!candidate) return undefined
    const replay = await this.#replayPosition(candidate)
    return replay !== undefined && replay >= needLsn ? candidate : undefined
  }

  /**
   * A replica's replay position right now. Concurrent reads share one
   * question per replica, and a slow answer counts as "not caught up" so the
   * read goes to the primary rather than waiting.
   */
  #replayPosition(replica: Backend<PgBackend>): Promise<bigint | undefined> {
    let asking = this.#replayChecks.get(replica)
    if (!asking) {
      const question = probeOn<{ replay: string | null }>(replica.target, 'SELECT pg_last_wal_replay_lsn()::text AS replay').then(
        (rows) => {
          const replay = parseLsn(rows[0]?.replay)
          const probe = this.#probes.get(replica)!
          if (replay !== undefined && (probe.replayLsn === undefined || replay > probe.replayLsn)) probe.replayLsn = replay
          return replay
        },
        () => undefined,
      )
      asking = question.finally(() => this.#replayChecks.delete(replica))
      this.#replayChecks.set(replica, asking)
    }
    return raceTimeout(asking, REPLAY_CHECK_MS, () => undefined)
  }

  #requirePrimary(): PgBackend {
    if (!this.#primary || !this.#primaryHealthy) throw new PrimaryUnavailableError(this.#primaries.map((p) => p.label))
    return this.#primary
  }

  /**
   * One query's connection failed on the primary: evidence about that
   * connection, not yet about the server. The primary is probed at once; only
   * the probes (fall in a row) take it out, and abort what runs on it.
   */
  #primaryFailed(error: unknown, backend: PgBackend, midQuery = false): PrimaryUnavailableError {
    if (backend === this.#primary) {
      this.#log.warn('a query lost its connection to the primary; probing it now', { primary: backend.id, error })
      this.#probeSoon()
    }
    return new PrimaryUnavailableError(this.#primaries.map((p) => p.label), error, midQuery)
  }

  #probeSoon(): void {
    if (this.#closed || this.#probingPrimary) return
    this.#probingPrimary = this.#probePrimaries()
      .catch((error: unknown) => this.#log.error('probing failed unexpectedly', { error }))
      .finally(() => (this.#probingPrimary = undefined))
  }

  async #markWrite(connection: DatabaseConnection): Promise<void> {
    if (this.#options.consistency.mode === 'off' || !this.#consistency.inScope) return
    if (this.#options.consistency.mode === 'window') return this.#consistency.noteWrite({ lsn: undefined, at: Date.now() })
    try {
      const { rows } = await connection.executeQuery<{ lsn: string }>(CompiledQuery.raw('SELECT pg_current_wal_insert_lsn()::text AS lsn'))
      this.#consistency.noteWrite({ lsn: parseLsn(rows[0]?.lsn) ?? UNKNOWN_POSITION, at: Date.now() })
    } catch (error) {
      // The write itself succeeded; without its position, the scope reads from the primary.
      this.#log.warn('could not read the WAL position after a write; its scope reads from the primary', { error })
      this.#consistency.noteWrite({ lsn: UNKNOWN_POSITION, at: Date.now() })
    }
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
    await this.#probePrimaries()
    await Promise.all(this.#replicas.backends.map((backend) => this.#probeReplica(backend)))
    const readable = this.#replicas.backends.filter((backend) => this.#withinLag(this.#probes.get(backend)!))
    const changed = readable.length !== this.#readable.length || readable.some((backend, i) => backend !== this.#readable[i])
    this.#readable = readable
    if (changed) this.#healthChanged.emit()
  }

  #withinLag(probe: ReplicaProbe): boolean {
    return (
      probe.inRecovery === true &&
      !(probe.lagMs !== undefined && probe.lagMs > this.#options.maxLagMs) &&
      !(this.#options.maxLagBytes !== undefined && probe.lagBytes !== undefined && probe.lagBytes > this.#options.maxLagBytes)
    )
  }

  /**
   * Finds the candidate that is not in recovery (staying with the current
   * primary while it answers, so a restarted old primary does not take the
   * writes back), reads its WAL position and beats the heartbeat.
   */
  async #probePrimaries(): Promise<void> {
    const results = await Promise.all(
      this.#primaries.map(async (backend) => {
        try {
          const rows = await this.#probeQuery<{ recovery: boolean; lsn: string | null }>(
            backend,
            'SELECT pg_is_in_recovery() AS recovery, CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END AS lsn',
          )
          return { backend, recovery: rows[0]?.recovery ?? true, lsn: parseLsn(rows[0]?.lsn) }
        } catch (error) {
          return { backend, recovery: undefined, lsn: undefined, error }
        }
      }),
    )
    const writable = results.filter((r) => r.recovery === false)
    if (writable.length > 1 && !this.#splitBrain) {
      this.#log.error('more than one candidate primary accepts writes (split brain); staying with the current one', {
        candidates: writable.map((r) => r.backend.id),
      })
    }
    this.#splitBrain = writable.length > 1
    // The current primary not answering one probe is no failover: like any
    // server, it is given `fall` probes before another candidate takes over.
    const current = results.find((r) => r.backend === this.#primary)
    if (current?.recovery === undefined && this.#primaryHealthy && this.#primaryFailures + 1 < this.#options.health.fall) {
      this.#primarySuccesses = 0
      this.#primaryFailures++
      return
    }
    const found = writable.find((r) => r.backend === this.#primary) ?? writable[0]
    if (found) {
      if (this.#primary !== found.backend) {
        this.#log.info('primary found', { primary: found.backend.id })
        // Queries still waiting on the old primary would only wait for their timeout.
        this.#primary?.timed.abortInFlight()
      }
      this.#primary = found.backend
      this.#primaryLsn = found.lsn
      this.#primaryLsnAt = Date.now()
      if (found.lsn !== undefined) this.#primaryHistory.record(this.#primaryLsnAt, found.lsn)
      this.#primaryFailures = 0
      this.#primarySuccesses++
      if (!this.#primaryHealthy && (this.#primarySuccesses >= this.#options.health.rise || this.#primaryEverHealthy === false)) {
        this.#log.info('primary available', { primary: found.backend.id })
        this.#primaryHealthy = true
        this.#primaryEverHealthy = true
        this.#primaryError = undefined
        this.#healthChanged.emit()
      }
      if (await this.#beat(found.backend)) this.#lastBeatAt = Date.now()
      return
    }
    this.#primarySuccesses = 0
    this.#primaryFailures++
    const failed = current ?? results.find((r) => 'error' in r)
    const cause = failed && 'error' in failed ? failed.error : undefined
    this.#primaryError = results.length > 0 && results.every((r) => r.recovery === true)
      ? 'every candidate is in recovery (a replica); promote one'
      : scrubSecrets(cause instanceof Error ? cause.message : 'no candidate answered')
    if (this.#primaryHealthy && this.#primaryFailures >= this.#options.health.fall) {
      this.#primaryHealthy = false
      this.#primary?.timed.abortInFlight()
      this.#log.error('no primary is available', { candidates: this.#primaries.map((p) => p.id) })
      this.#healthChanged.emit()
    }
  }

  async #beat(primary: PgBackend): Promise<boolean> {
    const table = this.#options.heartbeatTable
    if (table === false || !this.#heartbeat) return false
    try {
      await this.#probeQuery(primary, `INSERT INTO ${table} (id, beat_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at`)
      return true
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') {
        this.#heartbeat = false
        this.#log.warn(`replication heartbeat table ${table} is missing (run the migrations); lag is measured from replay timestamps`)
      } else {
        this.#log.warn('could not beat the replication heartbeat', { table, error })
      }
      return false
    }
  }

  async #probeReplica(backend: Backend<PgBackend>): Promise<void> {
    const probe = this.#probes.get(backend)!
    const started = performance.now()
    try {
      const rows = await this.#probeQuery<{ recovery: boolean; replay: string | null; receive: string | null; replay_age_ms: number | null }>(
        backend.target,
        `SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS replay, pg_last_wal_receive_lsn()::text AS receive,
                (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS replay_age_ms`,
      )
      const row = rows[0]!
      probe.inRecovery = row.recovery
      probe.replayLsn = parseLsn(row.replay)
      const receive = parseLsn(row.receive)
      probe.lagBytes = this.#primaryLsn !== undefined && probe.replayLsn !== undefined ? Math.max(0, Number(this.#primaryLsn - probe.replayLsn)) : undefined
      probe.lagMs = await this.#lagMs(backend.target, row.replay_age_ms, probe.replayLsn, receive)
      this.#replicas.reportSuccess(backend, performance.now() - started)
    } catch (error) {
      this.#log.debug('replica probe failed', { replica: backend.id, error })
      this.#replicas.reportFailure(backend)
    }
  }

  /**
   * Replication lag in time. A replica that has replayed the primary's last
   * known position is not behind. Otherwise: from the heartbeat row, while
   * the primary is beating (a stopped primary must not make every replica
   * look ever further behind); else from the last replayed transaction's
   * timestamp, except that a replica that replayed all it received is not
   * behind.
   */
  async #lagMs(replica: PgBackend, replayAgeMs: number | null, replay: bigint | undefined, receive: bigint | undefined): Promise<number | undefined> {
    if (replay !== undefined && this.#primaryLsn !== undefined && this.#primaryHealthy && replay >= this.#primaryLsn) return 0
    const table = this.#options.heartbeatTable
    const beating = this.#primaryHealthy && Date.now() - this.#lastBeatAt < 3 * this.#options.health.probeIntervalMs
    if (table !== false && this.#heartbeat && beating) {
      try {
        const rows = await this.#probeQuery<{ lag_ms: number | null }>(
          replica,
          `SELECT (extract(epoch FROM now() - beat_at) * 1000)::float8 AS lag_ms FROM ${table} WHERE id = 1`,
        )
        const lag = rows[0]?.lag_ms
        if (lag !== null && lag !== undefined) return Math.max(0, lag)
      } catch {
        // No heartbeat on this replica yet: fall back below.
      }
    }
    // Without a heartbeat: how long ago the primary was where this replica is now.
    if (replay !== undefined && this.#primaryHealthy) {
      const behindSince = this.#primaryHistory.behindSince(replay)
      if (behindSince !== undefined) return Math.max(0, Date.now() - behindSince)
    }
    // The primary is down: a replica that replayed all it received is as fresh as it can be.
    if (replay !== undefined && receive !== undefined && replay >= receive) return 0
    return replayAgeMs ?? undefined
  }

  #probeQuery<R extends object>(backend: PgBackend, sql: string): Promise<R[]> {
    const ms = this.#options.health.probeTimeoutMs
    return raceTimeout(probeOn<R>(backend, sql), ms, (): never => {
      throw new Error(`probe got no answer within ${ms} ms`)
    })
  }
}

function connectionCounts(pool: { totalCount: number; idleCount: number; waitingCount: number } | undefined): ReplicaStatus['connections'] {
  return pool ? { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount } : { total: 0, idle: 0, waiting: 0 }
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
