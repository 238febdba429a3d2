/**
 * Lets loops wait for a time or until something worth acting on happens
 * (a broker came up, the pool closed), whichever comes first.
 *
 * @example
 * const woken = await signal.idle(backoff.next())
 * signal.wake() // elsewhere: a broker is up
 */
export class WakeSignal {
  readonly #waiters = new Set<() => void>()

  /** Waits `ms`, or less if woken; resolves true when woken early. */
  idle(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer)
        this.#waiters.delete(wake)
        resolve(woken)
      }
      const wake = (): void => done(true)
      const timer = setTimeout(() => done(false), ms)
      this.#waiters.add(wake)
    })
  }

  wake(): void {
    for (const wake of [...this.#waiters]) wake()
  }
}
