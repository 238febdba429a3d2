import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * Smooth weighted round robin (as NGINX does it): over any window, each
 * backend gets its share of picks by weight, interleaved rather than in runs,
 * and deterministically. Backends that drop out simply stop accumulating.
 *
 * @example
 * // weights 5, 1, 1 pick: a a b a c a a, ...
 * new WeightedStrategy()
 */
export class WeightedStrategy implements BalancingStrategy {
  readonly name = 'weighted'
  readonly #current = new Map<string, number>()

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    if (candidates.length === 0) return undefined
    let total = 0
    let best: B | undefined
    let bestWeight = -Infinity
    for (const candidate of candidates) {
      const weight = Math.max(0, candidate.weight)
      total += weight
      const current = (this.#current.get(candidate.id) ?? 0) + weight
      this.#current.set(candidate.id, current)
      if (current > bestWeight) {
        best = candidate
        bestWeight = current
      }
    }
    if (total === 0) return candidates[0]
    this.#current.set(best!.id, bestWeight - total)
    return best
  }
}
