/**
 * `promise`, or whatever `onTimeout` returns (or throws) if it has not settled
 * within `ms`. The timer is always cleared, so nothing lingers after either.
 *
 * @example
 * const answered = await raceTimeout(unsubscribe().then(() => true), 5000, () => false)
 * await raceTimeout(query(), 1000, () => { throw new Error('no answer within 1000 ms') })
 */
export function raceTimeout<T, F>(promise: Promise<T>, ms: number, onTimeout: () => F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<F>((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout())
      } catch (error) {
        reject(error)
      }
    }, Math.max(0, ms))
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
