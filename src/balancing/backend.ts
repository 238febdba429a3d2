import { Ewma } from './ewma.js'
import { HealthTracker, type HealthState, type HealthThresholds } from './health-tracker.js'

/** How a backend is described to a `BackendSet`. */
export interface BackendOptions<T> {
  /** Unique within the set; used in logs, events and metrics labels. */
  readonly id: string
  /** What the backend stands for: a broker's connection options, a pg pool, ... */
  readonly target: T
  /** Relative share for the weighted strategy. Default 1. */
  readonly weight?: number
  /** Region tag, for region-aware picks. */
  readonly region?: string
}

/** How long a passively ejected backend stays out. */
export interface EjectionOptions {
  /** First ejection, in ms; each further one doubles it. Default 1000. */
  readonly baseMs?: number
  /** Longest ejection, in ms. Default 60 000. */
  readonly maxMs?: number
}

/** What strategies see of a backend. */
export interface BackendView {
  readonly id: string
  /** Position in the set, from 0: the order backends were given in. */
  readonly index: number
  readonly weight: number
  /** Requests sent to it and not yet answered. */
  readonly outstanding: number
  /** Time-decayed average latency in ms, `undefined` before the first sample. */
  readonly latencyMs: number | undefined
}

/**
 * One member of a pool: its identity, health (rise/fall), latency average,
 * requests in flight and passive-ejection record. A `BackendSet` changes it;
 * everyone else reads it.
 *
 * @example
 * const replica = set.pick()
 * const done = replica.begin()
 * try { await query(replica.target) } finally { done() }
 */
export class Backend<T> implements BackendView {
  readonly id: string
  readonly target: T
  readonly weight: number
  readonly region: string | undefined
  readonly index: number
  /** @internal changed through the `BackendSet` so that transitions are announced. */
  readonly health: HealthTracker
  /** @internal */
  readonly latency: Ewma
  #outstanding = 0
  #ejectedUntil = 0
  #ejections = 0
  /** Results reported as successes in a row. */
  #successStreak = 0

  constructor(options: BackendOptions<T>, index: number, health: HealthThresholds, latencyHalfLifeMs: number) {
    this.id = options.id
    this.target = options.target
    this.weight = options.weight ?? 1
    this.region = options.region
    this.index = index
    this.health = new HealthTracker(health)
    this.latency = new Ewma(latencyHalfLifeMs)
  }

  get state(): HealthState {
    return this.health.state
  }

  get outstanding(): number {
    return this.#outstanding
  }

  get latencyMs(): number | undefined {
    return this.latency.value
  }

  /** Until when (epoch ms) the backend is ejected; 0 when it is not. */
  get ejectedUntil(): number {
    return this.#ejectedUntil
  }

  /** Counts a request as outstanding; call the returned function exactly once when it is answered. */
  begin(): () => void {
    this.#outstanding++
    let done = false
    return () => {
      if (done) return
      done = true
      this.#outstanding--
    }
  }

  /** Healthy or not yet known, and not ejected. */
  isAvailable(now: number): boolean {
    return this.health.state !== 'unhealthy' && now >= this.#ejectedUntil
  }

  /**
   * Available whatever the time: healthy or not yet known, and not ejected
   * since it was last forgiven. Lets a per-query pick skip reading the clock.
   */
  get availableAtAnyTime(): boolean {
    return this.health.state !== 'unhealthy' && this.#ejectedUntil === 0
  }

  /** @internal Ejects for a time that doubles with each ejection in a row; returns it. */
  eject(now: number, options: Required<EjectionOptions>): number {
    const duration = Math.min(options.maxMs, options.baseMs * 2 ** this.#ejections)
    this.#ejections++
    this.#ejectedUntil = now + duration
    return duration
  }

  /** @internal A healthy streak forgives past ejections. */
  forgive(): void {
    this.#ejections = 0
    this.#ejectedUntil = 0
  }

  /** @internal Counts a success; `rise` of them in a row forgive past ejections. */
  noteSuccess(rise: number): void {
    if (++this.#successStreak >= rise) this.forgive()
  }

  /** @internal A failure ends the streak of successes. */
  noteFailure(): void {
    this.#successStreak = 0
  }
}
