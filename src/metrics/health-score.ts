/** What the health score is computed from, over its window. */
export interface HealthScoreInputs {
  readonly requests: number
  readonly failures: number
  /** Mean request duration, ms; 0 without requests. */
  readonly meanLatencyMs: number
  readonly failovers: number
}

/**
 * One number in [0, 1] for dashboards and alerts: the share of requests that
 * succeeded, less up to 0.2 for slowness (0.02 per 100 ms of mean request
 * duration) and up to 0.3 for instability (0.05 per failover). 1 means
 * every request succeeded fast with no failover; with no requests the
 * success share is 1.
 *
 * @example
 * healthScore({ requests: 1000, failures: 10, meanLatencyMs: 50, failovers: 1 }) // 0.99 - 0.01 - 0.05 = 0.93
 */
export function healthScore(inputs: HealthScoreInputs): number {
  const success = inputs.requests > 0 ? 1 - inputs.failures / inputs.requests : 1
  const slowness = Math.min(0.2, (inputs.meanLatencyMs / 100) * 0.02)
  const instability = Math.min(0.3, inputs.failovers * 0.05)
  return Math.min(1, Math.max(0, success - slowness - instability))
}

interface Bucket {
  start: number
  requests: number
  failures: number
  latencyMs: number
  /** Each source's failover count when the bucket started. */
  failoversAtStart: number
}

/**
 * The inputs of `healthScore` over a sliding window of `windowMs`, kept in
 * `buckets` slices so recording stays O(1).
 *
 * @example
 * const window = new HealthScoreWindow(() => pools.reduce((n, p) => n + p.metricsSnapshot().failovers, 0))
 * window.record(12, false)
 * healthScore(window.inputs())
 */
export class HealthScoreWindow {
  readonly #buckets: Bucket[] = []
  readonly #sliceMs: number
  readonly #size: number
  readonly #failovers: () => number
  readonly #now: () => number

  constructor(failovers: () => number, options: { readonly windowMs?: number; readonly buckets?: number; readonly now?: () => number } = {}) {
    this.#size = options.buckets ?? 6
    this.#sliceMs = (options.windowMs ?? 60_000) / this.#size
    this.#failovers = failovers
    this.#now = options.now ?? Date.now
  }

  record(durationMs: number, failed: boolean): void {
    const bucket = this.#current()
    bucket.requests++
    if (failed) bucket.failures++
    bucket.latencyMs += durationMs
  }

  inputs(): HealthScoreInputs {
    this.#current()
    let requests = 0
    let failures = 0
    let latencyMs = 0
    for (const bucket of this.#buckets) {
      requests += bucket.requests
      failures += bucket.failures
      latencyMs += bucket.latencyMs
    }
    return {
      requests,
      failures,
      meanLatencyMs: requests > 0 ? latencyMs / requests : 0,
      failovers: Math.max(0, this.#failovers() - this.#buckets[0]!.failoversAtStart),
    }
  }

  #current(): Bucket {
    const now = this.#now()
    const last = this.#buckets[this.#buckets.length - 1]
    if (last && now - last.start < this.#sliceMs) return last
    const start = last ? last.start + Math.floor((now - last.start) / this.#sliceMs) * this.#sliceMs : now
    const bucket: Bucket = { start, requests: 0, failures: 0, latencyMs: 0, failoversAtStart: this.#failovers() }
    this.#buckets.push(bucket)
    while (this.#buckets.length > 0 && this.#buckets[0]!.start <= now - this.#sliceMs * this.#size) this.#buckets.shift()
    return bucket
  }
}
