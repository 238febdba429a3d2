/**
 * The primary's WAL position at the last `size` probes: a replica that has
 * replayed up to position P holds everything the primary had written at
 * every probe whose position was at most P, so its lag is at most the time
 * since the newest such probe (over by up to one probe interval).
 *
 * @example
 * history.record(Date.now(), primaryLsn)
 * const since = history.behindSince(replicaReplayLsn) // epoch ms, or undefined
 */
export class WalHistory {
  readonly #at: Float64Array
  readonly #lsn: bigint[]
  #next = 0
  #count = 0

  constructor(size: number) {
    this.#at = new Float64Array(size)
    this.#lsn = new Array<bigint>(size).fill(0n)
  }

  record(at: number, lsn: bigint): void {
    this.#at[this.#next] = at
    this.#lsn[this.#next] = lsn
    this.#next = (this.#next + 1) % this.#at.length
    if (this.#count < this.#at.length) this.#count++
  }

  /**
   * Since when (epoch ms) a replica at `replay` has been missing WAL the
   * primary had: the time of the newest probe it has caught up with, or of
   * the oldest one remembered when it is behind them all. `undefined` when
   * it has caught up with the newest, or nothing is recorded.
   */
  behindSince(replay: bigint): number | undefined {
    if (this.#count === 0) return undefined
    const size = this.#at.length
    const newest = (this.#next - 1 + size) % size
    if (replay >= this.#lsn[newest]!) return undefined
    for (let i = 1; i < this.#count; i++) {
      const slot = (newest - i + size) % size
      if (replay >= this.#lsn[slot]!) return this.#at[slot]
    }
    return this.#at[(newest - this.#count + 1 + size) % size]
  }
}
