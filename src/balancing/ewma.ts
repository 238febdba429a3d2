/**
 * An exponentially weighted moving average that decays with time, not with
 * the number of samples: a backend observed rarely does not keep a stale
 * average, and a burst of samples does not erase the past at once.
 *
 * @example
 * const rtt = new Ewma(5_000)
 * rtt.observe(12, Date.now())
 * rtt.value // 12
 */
export class Ewma {
  readonly #halfLifeMs: number
  #value: number | undefined
  #at = 0

  /** @param halfLifeMs after this long, an old average weighs half against a new sample. */
  constructor(halfLifeMs: number) {
    this.#halfLifeMs = halfLifeMs
  }

  /** The current average, or `undefined` before the first sample. */
  get value(): number | undefined {
    return this.#value
  }

  observe(sample: number, now: number): void {
    if (this.#value === undefined) {
      this.#value = sample
    } else {
      const elapsed = Math.max(0, now - this.#at)
      const keep = Math.pow(0.5, elapsed / this.#halfLifeMs)
      this.#value = this.#value * keep + sample * (1 - keep)
    }
    this.#at = now
  }

  reset(): void {
    this.#value = undefined
    this.#at = 0
  }
}
