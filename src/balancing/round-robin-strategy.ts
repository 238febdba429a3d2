import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * Each available backend in turn.
 *
 * @example
 * new BackendSet(backends, { strategy: new RoundRobinStrategy() })
 */
export class RoundRobinStrategy implements BalancingStrategy {
  readonly name = 'round-robin'
  #next = 0

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    if (candidates.length === 0) return undefined
    const chosen = candidates[this.#next % candidates.length]
    this.#next = (this.#next + 1) % 1_000_000_007
    return chosen
  }
}
