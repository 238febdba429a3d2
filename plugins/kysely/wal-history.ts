/**
 * The primary's WAL position over time, from its probes and from the writes
 * the pool made: a replica that has replayed up to position P has everything
 * the primary had written when it was at P, so its lag is the time since the
 * primary was there. Between two samples the position is taken to have grown
 * evenly, which holds under steady writes to within the samples' spacing.
 *
 * Samples closer than `minSpacingMs` to the newest one only move it forward,
 * so a busy primary's history still spans `size × minSpacingMs`.
 *
 * @example
 * history.record(Date.now(), primaryLsn)
 * const lagMs = history.lagMs(replicaReplayLsn, Date.now()) // undefined: not behind any sample
 */
export class WalHistory {
  readonly #at: Float64Array
  readonly #lsn: bigint[]
  readonly #minSpacingMs: number
  #next = 0
  #count = 0
  /** When the newest slot was first written: samples within `minSpacingMs` of it overwrite it. */
  #slotOpenedAt = 0

  constructor(size: number, minSpacingMs = 0) {
    this.#at = new Float64Array(size)
    this.#lsn = new Array<bigint>(size).fill(0n)
    this.#minSpacingMs = minSpacingMs
  }

  /** Forgets every sample: the primary changed, and its positions say nothing of the old one's times. */
  clear(): void {
    this.#count = 0
    this.#next = 0
  }

  /** The newest position recorded, or `undefined`. */
  get newest(): bigint | undefined {
    return this.#count === 0 ? undefined : this.#lsn[this.#slot(0)]
  }

  /** When the newest position was recorded (epoch ms), or 0. */
  get newestAt(): number {
    return this.#count === 0 ? 0 : this.#at[this.#slot(0)]!
  }

  /**
   * Notes that the primary was at `lsn` at `at` (epoch ms). Positions only
   * move forward: an older one (a write that finished late) is ignored.
   */
  record(at: number, lsn: bigint): void {
    if (this.#count > 0) {
      const newest = this.#slot(0)
      if (lsn <= this.#lsn[newest]!) return
      if (at - this.#slotOpenedAt < this.#minSpacingMs) {
        this.#lsn[newest] = lsn
        this.#at[newest] = Math.max(at, this.#at[newest]!)
        return
      }
    }
    this.#slotOpenedAt = at
    this.#at[this.#next] = at
    this.#lsn[this.#next] = lsn
    this.#next = (this.#next + 1) % this.#at.length
    if (this.#count < this.#at.length) this.#count++
  }

  /**
   * How far behind (ms, at `now`) a replica that replayed up to `replay` is:
   * `undefined` when it has everything of the newest sample (it is not known
   * to be behind) or nothing is recorded; at least the age of the oldest
   * sample when it is behind them all (`beyond` is then true).
   */
  lag(replay: bigint, now: number): { readonly ms: number; readonly beyond: boolean } | undefined {
    if (this.#count === 0 || replay >= this.#lsn[this.#slot(0)]!) return undefined
    for (let back = 1; back < this.#count; back++) {
      const slot = this.#slot(back)
      const lsn = this.#lsn[slot]!
      if (replay < lsn) continue
      // Between this sample and the next newer one, which the replica has not reached.
      const later = this.#slot(back - 1)
      const span = Number(this.#lsn[later]! - lsn)
      const fraction = span > 0 ? Number(replay - lsn) / span : 0
      const primaryWasThere = this.#at[slot]! + fraction * (this.#at[later]! - this.#at[slot]!)
      return { ms: Math.max(0, now - primaryWasThere), beyond: false }
    }
    return { ms: Math.max(0, now - this.#at[this.#slot(this.#count - 1)]!), beyond: true }
  }

  /** The slot `back` samples before the newest. */
  #slot(back: number): number {
    const size = this.#at.length
    return (this.#next - 1 - back + 2 * size) % size
  }
}
