import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * The backend with the fewest requests in flight; ties are taken in turn so
 * that an idle pool still spreads its load.
 *
 * @example
 * new BackendSet(replicas, { strategy: new LeastOutstandingStrategy() })
 */
export class LeastOutstandingStrategy implements BalancingStrategy {
  readonly name = 'least-outstanding'
  #turn = 0

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    if (candidates.length === 0) return undefined
    const start = this.#turn++ % candidates.length
    let best = candidates[start]!
    for (let i = 1; i < candidates.length; i++) {
      const candidate = candidates[(start + i) % candidates.length]!
      if (candidate.outstanding < best.outstanding) best = candidate
    }
    return best
  }
}
