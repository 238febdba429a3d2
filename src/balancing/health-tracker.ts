/** What a health tracker believes about a backend. */
export type HealthState = 'unknown' | 'healthy' | 'unhealthy'

/** Options of `HealthTracker`. */
export interface HealthThresholds {
  /** Consecutive successes that make a backend healthy. Default 2. */
  readonly rise?: number
  /** Consecutive failures that make a backend unhealthy. Default 2. */
  readonly fall?: number
}

/**
 * Rise/fall hysteresis, as load balancers do it: one good or bad result does
 * not flip a backend; `rise` successes or `fall` failures in a row do. A new
 * backend is `unknown` until then, and its first result decides at once, so a
 * starting pool does not wait `rise` probes to use a good backend.
 *
 * @example
 * const health = new HealthTracker({ rise: 2, fall: 3 })
 * health.failure() // 'unhealthy' (first result decides)
 * health.success() // undefined: one success is not enough
 * health.success() // 'healthy'
 */
export class HealthTracker {
  readonly #rise: number
  readonly #fall: number
  #state: HealthState = 'unknown'
  #successes = 0
  #failures = 0

  constructor(thresholds: HealthThresholds = {}) {
    this.#rise = thresholds.rise ?? 2
    this.#fall = thresholds.fall ?? 2
  }

  get state(): HealthState {
    return this.#state
  }

  /**
   * Further failures in a row that would make a healthy backend unhealthy (0
   * when it is not healthy): a caller may act before the one that would.
   */
  get failuresToFall(): number {
    return this.#state === 'healthy' ? Math.max(1, this.#fall - this.#failures) : 0
  }

  /** Records a success; returns the new state when it changed. */
  success(): HealthState | undefined {
    this.#failures = 0
    this.#successes++
    if (this.#state === 'healthy') return undefined
    if (this.#state === 'unknown' || this.#successes >= this.#rise) return this.#set('healthy')
    return undefined
  }

  /** Records a failure; returns the new state when it changed. */
  failure(): HealthState | undefined {
    this.#successes = 0
    this.#failures++
    if (this.#state === 'unhealthy') return undefined
    if (this.#state === 'unknown' || this.#failures >= this.#fall) return this.#set('unhealthy')
    return undefined
  }

  /** Marks the backend unhealthy at once, for failures that need no confirmation (a closed connection). */
  down(): HealthState | undefined {
    this.#successes = 0
    this.#failures = Math.max(this.#failures, this.#fall)
    return this.#state === 'unhealthy' ? undefined : this.#set('unhealthy')
  }

  #set(state: HealthState): HealthState {
    this.#state = state
    return state
  }
}
