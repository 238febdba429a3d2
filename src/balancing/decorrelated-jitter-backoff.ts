/** Options of `DecorrelatedJitterBackoff`. */
export interface BackoffOptions {
  /** Smallest delay, in ms. Default 250. */
  readonly baseMs?: number
  /** Largest delay, in ms. Default 30 000. */
  readonly capMs?: number
  /** Source of randomness in [0, 1); injectable for tests. Default `Math.random`. */
  readonly random?: () => number
}

/**
 * Retry delays with decorrelated jitter: each delay is drawn between the base
 * and three times the previous one, capped. Clients that failed together
 * spread out instead of retrying in lockstep, and a long outage backs off
 * quickly to the cap.
 *
 * @example
 * const backoff = new DecorrelatedJitterBackoff({ baseMs: 250, capMs: 30_000 })
 * setTimeout(retry, backoff.next())
 * backoff.reset() // after a success
 */
export class DecorrelatedJitterBackoff {
  readonly #base: number
  readonly #cap: number
  readonly #random: () => number
  #previous: number

  constructor(options: BackoffOptions = {}) {
    this.#base = options.baseMs ?? 250
    this.#cap = Math.max(this.#base, options.capMs ?? 30_000)
    this.#random = options.random ?? Math.random
    this.#previous = this.#base
  }

  /** The next delay, in ms. */
  next(): number {
    const upper = Math.min(this.#cap, this.#previous * 3)
    const delay = Math.min(this.#cap, this.#base + this.#random() * Math.max(0, upper - this.#base))
    this.#previous = delay
    return delay
  }

  reset(): void {
    this.#previous = this.#base
  }
}
