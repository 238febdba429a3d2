import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * A uniformly random available backend.
 *
 * @example
 * new RandomStrategy(seededRandom) // deterministic in tests
 */
export class RandomStrategy implements BalancingStrategy {
  readonly name = 'random'
  readonly #random: () => number

  constructor(random: () => number = Math.random) {
    this.#random = random
  }

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    if (candidates.length === 0) return undefined
    return candidates[Math.floor(this.#random() * candidates.length)]
  }
}
