/**
 * Epoch milliseconds with sub-millisecond resolution, from the monotonic
 * clock: two calls a few microseconds apart still differ, so "a check that
 * started after this failure" is decided right even within one millisecond.
 *
 * @example
 * const since = preciseNow()
 */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now()
}
