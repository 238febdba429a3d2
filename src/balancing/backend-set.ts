import { TypedEvent, type Disposer } from '../typed-event.js'
import { Backend, type BackendOptions, type EjectionOptions } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'
import type { HealthState, HealthThresholds } from './health-tracker.js'

/** Options of `BackendSet`. */
export interface BackendSetOptions {
  readonly strategy: BalancingStrategy
  readonly health?: HealthThresholds
  readonly ejection?: EjectionOptions
  /** Half-life of the latency average, in ms. Default 10 000. */
  readonly latencyHalfLifeMs?: number
  /** Clock, injectable for tests. Default `Date.now`. */
  readonly now?: () => number
  /** Where errors thrown by event listeners go. */
  readonly onListenerError?: (error: unknown) => void
}

/** A backend's health changed. */
export interface BackendStateChange<T> {
  readonly backend: Backend<T>
  readonly from: HealthState
  readonly to: HealthState
}

/** A backend was passively ejected. */
export interface BackendEjection<T> {
  readonly backend: Backend<T>
  readonly durationMs: number
}

/** Which backends a pick may choose from. */
export interface PickOptions<T> {
  /** Prefer backends for which this is true, when any is available (e.g. same region). */
  readonly prefer?: (backend: Backend<T>) => boolean
  /** Never choose these (e.g. the one that just failed). */
  readonly exclude?: ReadonlySet<Backend<T>> | Backend<T>
}

/**
 * The balancing engine shared by brokers, replicas and regions: a set of
 * backends with weights, health and latency, from which a strategy picks one.
 * Results are reported back through it, so that every health transition and
 * ejection is announced once, whatever plugin caused it.
 *
 * @example
 * const set = new BackendSet([{ id: 'a', target: urlA }, { id: 'b', target: urlB }], { strategy: new P2cEwmaStrategy() })
 * const backend = set.pick()
 * set.reportSuccess(backend!, 12)
 */
export class BackendSet<T> {
  readonly backends: readonly Backend<T>[]
  readonly #strategy: BalancingStrategy
  readonly #ejection: Required<EjectionOptions>
  readonly #rise: number
  readonly #now: () => number
  readonly #stateChanged: TypedEvent<BackendStateChange<T>>
  readonly #ejected: TypedEvent<BackendEjection<T>>

  constructor(backends: readonly BackendOptions<T>[], options: BackendSetOptions) {
    const halfLife = options.latencyHalfLifeMs ?? 10_000
    this.backends = Object.freeze(backends.map((b, index) => new Backend(b, index, options.health ?? {}, halfLife)))
    this.#strategy = options.strategy
    this.#ejection = { baseMs: options.ejection?.baseMs ?? 1000, maxMs: options.ejection?.maxMs ?? 60_000 }
    this.#rise = options.health?.rise ?? 2
    this.#now = options.now ?? Date.now
    this.#stateChanged = new TypedEvent(options.onListenerError)
    this.#ejected = new TypedEvent(options.onListenerError)
  }

  get strategy(): BalancingStrategy {
    return this.#strategy
  }

  /** Backends that may be picked now: not unhealthy and not ejected. */
  available(): Backend<T>[] {
    const now = this.#now()
    return this.backends.filter((backend) => backend.isAvailable(now))
  }

  /** Picks an available backend, preferring `prefer` ones; `undefined` when none is available. */
  pick(options: PickOptions<T> = {}): Backend<T> | undefined {
    const now = this.#now()
    const exclude = options.exclude
    const candidates = this.backends.filter(
      (backend) =>
        backend.isAvailable(now) && !(exclude instanceof Backend ? exclude === backend : exclude?.has(backend)),
    )
    if (options.prefer) {
      const preferred = candidates.filter(options.prefer)
      if (preferred.length > 0) return this.#strategy.pick(preferred)
    }
    return this.#strategy.pick(candidates)
  }

  /**
   * Picks among `candidates` (a subset the caller keeps, e.g. replicas within
   * their lag limit), skipping unavailable ones and those in `exclude`,
   * preferring `prefer` ones; allocation-light, for per-query paths.
   */
  pickAmong(
    candidates: readonly Backend<T>[],
    exclude?: ReadonlySet<Backend<T>>,
    prefer?: (backend: Backend<T>) => boolean,
  ): Backend<T> | undefined {
    // The common case, every candidate available (none ejected) and nothing to filter: no copy, no clock read.
    if (exclude === undefined && prefer === undefined && candidates.every(availableAtAnyTime)) {
      return this.#strategy.pick(candidates)
    }
    const now = this.#now()
    const usable: Backend<T>[] = []
    let preferred: Backend<T>[] | undefined
    for (const backend of candidates) {
      if (!backend.isAvailable(now) || exclude?.has(backend)) continue
      usable.push(backend)
      if (prefer?.(backend)) (preferred ??= []).push(backend)
    }
    return this.#strategy.pick(preferred ?? usable)
  }

  /** A request or probe succeeded; `latencyMs` feeds the latency average. */
  reportSuccess(backend: Backend<T>, latencyMs?: number): void {
    if (latencyMs !== undefined) backend.latency.observe(latencyMs, this.#now())
    backend.noteSuccess(this.#rise)
    const from = backend.state
    this.#announce(backend, from, backend.health.success())
  }

  /**
   * A request or probe failed. With `eject`, the backend is also taken out for
   * a time that doubles with each ejection in a row.
   */
  reportFailure(backend: Backend<T>, options: { readonly eject?: boolean } = {}): void {
    backend.noteFailure()
    const from = backend.state
    this.#announce(backend, from, backend.health.failure())
    if (options.eject) {
      const durationMs = backend.eject(this.#now(), this.#ejection)
      this.#ejected.emit({ backend, durationMs })
    }
  }

  /** The backend is certainly down (its connection closed): unhealthy at once. */
  markDown(backend: Backend<T>): void {
    backend.noteFailure()
    const from = backend.state
    this.#announce(backend, from, backend.health.down())
  }

  /** Listens to health transitions. */
  onStateChange(listener: (change: BackendStateChange<T>) => void): Disposer {
    return this.#stateChanged.on(listener)
  }

  /** Listens to passive ejections. */
  onEjection(listener: (ejection: BackendEjection<T>) => void): Disposer {
    return this.#ejected.on(listener)
  }

  #announce(backend: Backend<T>, from: HealthState, to: HealthState | undefined): void {
    if (to !== undefined) this.#stateChanged.emit({ backend, from, to })
  }
}

function availableAtAnyTime(backend: Backend<unknown>): boolean {
  return backend.availableAtAnyTime
}
