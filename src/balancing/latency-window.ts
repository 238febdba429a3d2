/**
 * The last `size` latency samples, for percentiles: recording is O(1) and
 * allocation-free; the sort happens only when a percentile is read (metrics
 * scrapes), never on the query path.
 *
 * @example
 * const window = new LatencyWindow(1024)
 * window.record(3.2)
 * window.percentile(0.99)
 */
export class LatencyWindow {
  readonly #samples: Float64Array
  #next = 0
  #count = 0

  constructor(size = 1024) {
    this.#samples = new Float64Array(size)
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % this.#samples.length
    if (this.#count < this.#samples.length) this.#count++
  }

  /** The `p` quantile (0..1) of the recorded samples, nearest rank; `undefined` before any. */
  percentile(p: number): number | undefined {
    if (this.#count === 0) return undefined
    const sorted = this.#samples.slice(0, this.#count).sort()
    return sorted[Math.min(this.#count - 1, Math.max(0, Math.ceil(p * this.#count) - 1))]
  }
}
