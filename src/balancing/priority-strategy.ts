import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * The first available backend in the order given: a primary with standbys.
 * Since the set offers only available backends, traffic falls back to the
 * first again as soon as it recovers.
 *
 * @example
 * new BackendSet([main, standby], { strategy: new PriorityStrategy() })
 */
export class PriorityStrategy implements BalancingStrategy {
  readonly name = 'priority'

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    let best: B | undefined
    for (const candidate of candidates) if (!best || candidate.index < best.index) best = candidate
    return best
  }
}
