import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import { LatencyWindow } from '../../src/balancing/latency-window.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { parseLsn } from './lsn.js'
import { probeOn, probeWithin, type PgBackend } from './pg-backend.js'
import type { PrimaryTracker } from './primary-tracker.js'

/** What the pool knows of one replica: from its probes, the reads it served and the positions asked at read time. */
export interface ReplicaProbe {
  readonly latencies: LatencyWindow
  inRecovery: boolean | undefined
  /** The newest replay position seen, by a probe or a read-time question. */
  replayLsn: bigint | undefined
  lagMs: number | undefined
  lagBytes: number | undefined
  queries: number
  errors: number
}

/** What the prober needs of the pool's options. */
export interface ReplicaProberOptions {
  readonly probeTimeoutMs: number
  readonly maxLagMs: number
  readonly maxLagBytes: number | undefined
}

/**
 * Probes the replicas: recovery state, replay position and lag, in time
 * (against the primary's WAL history, to within its samples' spacing under
 * steady writes) and in bytes; answers "how far has this replica replayed
 * now" for reads that need a position, one question per replica at a time.
 *
 * @example
 * await prober.probeAll()
 * prober.readable // replicas in recovery and within the lag limits
 */
export class ReplicaProber {
  readonly #set: BackendSet<PgBackend>
  readonly #primary: PrimaryTracker
  readonly #options: ReplicaProberOptions
  readonly #log: Logger
  readonly #probes = new Map<Backend<PgBackend>, ReplicaProbe>()
  readonly #asking = new Map<Backend<PgBackend>, Promise<bigint | undefined>>()
  #readable: Backend<PgBackend>[] = []

  constructor(set: BackendSet<PgBackend>, primary: PrimaryTracker, options: ReplicaProberOptions, log: Logger) {
    this.#set = set
    this.#primary = primary
    this.#options = options
    this.#log = log
    for (const backend of set.backends) {
      this.#probes.set(backend, { latencies: new LatencyWindow(), inRecovery: undefined, replayLsn: undefined, lagMs: undefined, lagBytes: undefined, queries: 0, errors: 0 })
    }
  }

  /** Replicas in recovery and within the lag limits, as of the last probes. */
  get readable(): readonly Backend<PgBackend>[] {
    return this.#readable
  }

  of(backend: Backend<PgBackend>): ReplicaProbe {
    return this.#probes.get(backend)!
  }

  /** Probes every replica; true when the readable set changed. */
  async probeAll(): Promise<boolean> {
    await Promise.all(this.#set.backends.map((backend) => this.#probe(backend)))
    const readable = this.#set.backends.filter((backend) => this.#withinLag(this.of(backend)))
    const changed = readable.length !== this.#readable.length || readable.some((backend, i) => backend !== this.#readable[i])
    this.#readable = readable
    return changed
  }

  /**
   * How far `replica` has replayed right now. Concurrent callers share one
   * question per replica; no answer within `timeoutMs` is `undefined`.
   */
  positionNow(replica: Backend<PgBackend>, timeoutMs: number): Promise<bigint | undefined> {
    let asking = this.#asking.get(replica)
    if (!asking) {
      const question = probeOn<{ replay: string | null }>(replica.target, 'SELECT pg_last_wal_replay_lsn()::text AS replay').then(
        (rows) => this.#sawPosition(replica, parseLsn(rows[0]?.replay)),
        () => undefined,
      )
      asking = question.finally(() => this.#asking.delete(replica))
      this.#asking.set(replica, asking)
    }
    return raceTimeout(asking, timeoutMs, () => undefined)
  }

  #sawPosition(replica: Backend<PgBackend>, replay: bigint | undefined): bigint | undefined {
    const probe = this.of(replica)
    if (replay !== undefined && (probe.replayLsn === undefined || replay > probe.replayLsn)) probe.replayLsn = replay
    return replay
  }

  #withinLag(probe: ReplicaProbe): boolean {
    const { maxLagMs, maxLagBytes } = this.#options
    return (
      probe.inRecovery === true &&
      !(probe.lagMs !== undefined && probe.lagMs > maxLagMs) &&
      !(maxLagBytes !== undefined && probe.lagBytes !== undefined && probe.lagBytes > maxLagBytes)
    )
  }

  async #probe(backend: Backend<PgBackend>): Promise<void> {
    const probe = this.of(backend)
    const sent = performance.now()
    const sentAt = Date.now()
    try {
      const rows = await probeWithin<{ recovery: boolean; replay: string | null; receive: string | null; replay_age_ms: number | null }>(
        backend.target,
        `SELECT pg_is_in_recovery() AS recovery, pg_last_wal_replay_lsn()::text AS replay, pg_last_wal_receive_lsn()::text AS receive,
                (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS replay_age_ms`,
        this.#options.probeTimeoutMs,
      )
      const rttMs = performance.now() - sent
      const row = rows[0]!
      const replay = parseLsn(row.replay)
      probe.inRecovery = row.recovery
      // As the server says, even backwards (a replica rewound after a failover): a read-time question that saw further only moves it forward again.
      probe.replayLsn = replay
      const primaryLsn = this.#primary.lsn
      probe.lagBytes = primaryLsn !== undefined && replay !== undefined ? Math.max(0, Number(primaryLsn - replay)) : undefined
      // The server read its position about half a round trip after the probe was sent.
      probe.lagMs = await this.#lagMs(backend.target, row.replay_age_ms, replay, parseLsn(row.receive), sentAt + rttMs / 2)
      this.#set.reportSuccess(backend, rttMs)
    } catch (error) {
      this.#log.debug('replica probe failed', { replica: backend.id, error })
      this.#set.reportFailure(backend)
    }
  }

  /**
   * Replication lag in time, while the primary is up: how long ago the
   * primary's WAL was where this replica has replayed to (0 when it has the
   * newest position seen); past the history's reach, the heartbeat row's age.
   * While the primary is down: 0 for a replica that replayed all it
   * received, else the age of its last replayed transaction.
   */
  async #lagMs(replica: PgBackend, replayAgeMs: number | null, replay: bigint | undefined, receive: bigint | undefined, at: number): Promise<number | undefined> {
    const primary = this.#primary
    if (replay !== undefined && primary.healthy) {
      const lag = primary.history.lag(replay, at)
      if (lag === undefined) return 0
      if (!lag.beyond) return lag.ms
      // Behind everything remembered: the heartbeat's age, else the last replayed transaction's, is nearer the truth than the history's reach.
      const beat = await this.#heartbeatAge(replica)
      return Math.max(lag.ms, beat ?? replayAgeMs ?? 0)
    }
    if (replay !== undefined && receive !== undefined && replay >= receive) return 0
    return replayAgeMs ?? undefined
  }

  async #heartbeatAge(replica: PgBackend): Promise<number | undefined> {
    const table = this.#primary.beatingTable
    if (table === undefined) return undefined
    try {
      const rows = await probeWithin<{ lag_ms: number | null }>(
        replica,
        `SELECT (extract(epoch FROM now() - beat_at) * 1000)::float8 AS lag_ms FROM ${table} WHERE id = 1`,
        this.#options.probeTimeoutMs,
      )
      const lag = rows[0]?.lag_ms
      return lag === null || lag === undefined ? undefined : Math.max(0, lag)
    } catch {
      // No heartbeat on this replica yet.
      return undefined
    }
  }
}
