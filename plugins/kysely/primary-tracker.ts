import { HealthTracker } from '../../src/balancing/health-tracker.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { SummarisedWarning } from '../../src/routemq/plugin-api.js'
import { scrubSecrets } from '../../src/health/scrub-secrets.js'
import { PrimaryUnavailableError } from './errors/primary-unavailable-error.js'
import { parseLsn } from './lsn.js'
import { probeWithin, type PgBackend } from './pg-backend.js'
import { PrimaryTracing } from './primary-tracing.js'
import { WalHistory } from './wal-history.js'

/** What a `PrimaryTracker` needs of the pool's options. */
export interface PrimaryTrackerOptions {
  readonly rise: number
  readonly fall: number
  readonly probeIntervalMs: number
  readonly probeTimeoutMs: number
  /** The replication heartbeat table beaten on each probe, or false. */
  readonly heartbeatTable: string | false
}

/**
 * Which candidate is the primary, and whether it takes writes: each probe asks
 * every candidate whether it is in recovery and, of the one that is not, its
 * WAL position; the engine's `HealthTracker` gives it `rise`/`fall`. The
 * current primary is kept while it answers (a restarted old primary does not
 * take the writes back), and another candidate takes over only when the
 * current one would fall. The WAL positions seen (and those of the pool's own
 * writes) make the history replica lag is measured against.
 *
 * @example
 * const primary = new PrimaryTracker(candidates, options, log, () => checksChanged.emit())
 * await primary.probe()
 * const backend = primary.require() // or PrimaryUnavailableError
 */
export class PrimaryTracker {
  readonly #candidates: readonly PgBackend[]
  readonly #options: PrimaryTrackerOptions
  readonly #log: Logger
  readonly #changed: () => void
  #health: HealthTracker
  /** Until the first primary is found, the first success decides, whatever failed before (it was still starting). */
  #everHealthy = false
  /** Probe samples every second, and write positions at most every 5 ms: 20 s of a busy primary. */
  readonly history = new WalHistory(4096, 5)
  #current: PgBackend | undefined
  #lsn: bigint | undefined
  #lsnAt = 0
  #error: string | undefined
  /** What each candidate that is no primary answered at the last probe: its error, or that it is in recovery. */
  #problems: readonly { readonly server: string; readonly error: unknown }[] = []
  #splitBrain = false
  #lastBeatAt = 0
  #heartbeat: boolean
  #probing: Promise<void> | undefined
  #closed = false
  readonly #tracing = new PrimaryTracing()
  /** A stopping primary fails every query in flight and each new connection: one line per server and episode. */
  readonly #lostConnection: SummarisedWarning
  readonly #beatFailed: SummarisedWarning

  constructor(candidates: readonly PgBackend[], options: PrimaryTrackerOptions, log: Logger, changed: () => void) {
    this.#candidates = candidates
    this.#options = options
    this.#log = log
    this.#changed = changed
    this.#health = new HealthTracker({ rise: options.rise, fall: options.fall })
    this.#heartbeat = options.heartbeatTable !== false
    this.#lostConnection = new SummarisedWarning(log, 'a query lost its connection to the primary; probing it now')
    this.#beatFailed = new SummarisedWarning(log, 'could not beat the replication heartbeat')
  }

  /** The candidate taking writes, as the probes last found it (even while not healthy). */
  get current(): PgBackend | undefined {
    return this.#current
  }

  get healthy(): boolean {
    return this.#health.state === 'healthy'
  }

  /** Why the last probe found no primary, for health bodies. */
  get error(): string | undefined {
    return this.#error
  }

  /** The primary's WAL position at the last probe, and when it was read (epoch ms). */
  get lsn(): bigint | undefined {
    return this.#lsn
  }

  get lsnAt(): number {
    return this.#lsnAt
  }

  /** The heartbeat table, while the primary beats it (a stopped primary must not make every replica look ever further behind). */
  get beatingTable(): string | undefined {
    const table = this.#options.heartbeatTable
    const beating = this.healthy && Date.now() - this.#lastBeatAt < 3 * this.#options.probeIntervalMs
    return table !== false && this.#heartbeat && beating ? table : undefined
  }

  /** Candidates the last probe found no primary on, with their error (or `'in recovery'`), for errors at start. */
  get problems(): readonly { readonly server: string; readonly error: unknown }[] {
    return this.#problems
  }

  /** Every candidate's label (no credentials), for errors. */
  get labels(): string[] {
    return this.#candidates.map((candidate) => candidate.label)
  }

  /** The primary, or `PrimaryUnavailableError`. */
  require(): PgBackend {
    if (!this.#current || !this.healthy) throw new PrimaryUnavailableError(this.labels)
    return this.#current
  }

  /** A write through the pool left the primary's WAL at `lsn`. */
  noteWritePosition(lsn: bigint): void {
    this.history.record(Date.now(), lsn)
  }

  /**
   * One query's connection failed on `backend`: evidence about that
   * connection, not yet about the server. The primary is probed at once; only
   * the probes take it out. Returns the error to throw.
   */
  failed(error: unknown, backend: PgBackend, midQuery = false): PrimaryUnavailableError {
    if (backend === this.#current) {
      this.#lostConnection.record({ primary: backend.id, error }, backend.id)
      this.probeSoon()
    }
    return new PrimaryUnavailableError(this.labels, error, midQuery)
  }

  /** A probe started by a failed query, if one runs: checks answer from its result. */
  get probing(): Promise<void> | undefined {
    return this.#probing
  }

  probeSoon(): void {
    if (this.#closed || this.#probing) return
    this.#probing = this.probe()
      .catch((error: unknown) => this.#log.error('probing failed unexpectedly', { error }))
      .finally(() => (this.#probing = undefined))
  }

  /** Stops probes started by failed queries; resolves once the one running finished. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#probing
    this.#lostConnection.endAll()
    this.#beatFailed.endAll()
  }

  /** Asks every candidate, then beats the heartbeat on the primary. */
  async probe(): Promise<void> {
    const confirmed = await this.#probeRound()
    this.#tracing.note(this.#current, this.healthy, confirmed)
  }

  /** True when the round found the current primary (or a new one) taking writes. */
  async #probeRound(): Promise<boolean> {
    const results = await Promise.all(this.#candidates.map((backend) => this.#ask(backend)))
    const writable = results.filter((r) => r.recovery === false)
    this.#problems = results.filter((r) => r.recovery !== false).map((r) => ({ server: r.backend.label, error: r.error ?? 'in recovery (a replica, not a primary)' }))
    if (writable.length > 1 && !this.#splitBrain) {
      this.#log.error('more than one candidate primary accepts writes (split brain); staying with the current one', {
        candidates: writable.map((r) => r.backend.id),
      })
    }
    this.#splitBrain = writable.length > 1
    const current = results.find((r) => r.backend === this.#current)
    // The current primary not answering is no failover until it would fall: like any server, it gets `fall` probes.
    if (current?.recovery === undefined && this.#health.failuresToFall > 1) {
      this.#health.failure()
      return false
    }
    const found = writable.find((r) => r.backend === this.#current) ?? writable[0]
    if (found) {
      await this.#found(found.backend, found.lsn)
      return true
    }
    const failed = current ?? results.find((r) => r.error !== undefined)
    this.#error = results.length > 0 && results.every((r) => r.recovery === true)
      ? 'every candidate is in recovery (a replica); promote one'
      : scrubSecrets(failed?.error instanceof Error ? failed.error.message : 'no candidate answered')
    if (this.#health.failure() === 'unhealthy') {
      this.#current?.timed.abortInFlight()
      this.#log.error('no primary is available', { candidates: this.#candidates.map((p) => p.id) })
      this.#changed()
    }
    return false
  }

  async #found(backend: PgBackend, lsn: bigint | undefined): Promise<void> {
    if (this.#current !== backend) {
      // The first at start is news; another one later is a failover, which an operator should look at.
      if (this.#current) this.#log.warn('failed over to another primary', { from: this.#current.id, primary: backend.id })
      else this.#log.info('primary found', { primary: backend.id })
      // Queries still waiting on the old primary would only wait for their timeout.
      this.#current?.timed.abortInFlight()
      // A promoted replica may start below the old primary's last position: the history of the old one would date every replica wrongly.
      if (this.#current) this.history.clear()
      this.#current = backend
    }
    this.#lsn = lsn
    this.#lsnAt = Date.now()
    if (lsn !== undefined) this.history.record(this.#lsnAt, lsn)
    if (!this.#everHealthy && this.#health.state === 'unhealthy') this.#health = new HealthTracker({ rise: this.#options.rise, fall: this.#options.fall })
    if (this.#health.success() === 'healthy') {
      this.#everHealthy = true
      this.#lostConnection.endAll()
      this.#log.info('primary available', { primary: backend.id })
      this.#error = undefined
      this.#changed()
    }
    if (await this.#beat(backend)) this.#lastBeatAt = Date.now()
  }

  async #ask(backend: PgBackend): Promise<{ backend: PgBackend; recovery?: boolean; lsn?: bigint; error?: unknown }> {
    try {
      const rows = await probeWithin<{ recovery: boolean; lsn: string | null }>(
        backend,
        'SELECT pg_is_in_recovery() AS recovery, CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END AS lsn',
        this.#options.probeTimeoutMs,
      )
      return { backend, recovery: rows[0]?.recovery ?? true, lsn: parseLsn(rows[0]?.lsn) }
    } catch (error) {
      return { backend, error }
    }
  }

  async #beat(primary: PgBackend): Promise<boolean> {
    const table = this.#options.heartbeatTable
    if (table === false || !this.#heartbeat) return false
    try {
      // The position right after the beat, too: the beat's own WAL then sits between two samples a moment apart, not spread over the second after the probe.
      const rows = await probeWithin<{ lsn: string | null }>(
        primary,
        `INSERT INTO ${table} (id, beat_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at RETURNING pg_current_wal_insert_lsn()::text AS lsn`,
        this.#options.probeTimeoutMs,
      )
      const lsn = parseLsn(rows[0]?.lsn)
      if (lsn !== undefined) this.history.record(Date.now(), lsn)
      this.#beatFailed.end()
      return true
    } catch (error) {
      if ((error as { code?: string }).code === '42P01') {
        this.#heartbeat = false
        this.#log.warn(`replication heartbeat table ${table} is missing (run the migrations); lag is measured from replay timestamps`)
      } else {
        this.#beatFailed.record({ table, error })
      }
      return false
    }
  }
}
