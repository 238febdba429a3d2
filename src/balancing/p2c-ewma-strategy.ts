import type { BackendView } from './backend.js'
import type { BalancingStrategy } from './balancing-strategy.js'

/**
 * Least latency by the power of two choices: draw two distinct backends at
 * random and take the one with the lower cost, its latency average times its
 * requests in flight plus one. Slow or busy backends get little traffic
 * without a herd piling onto the single fastest one; a backend with no sample
 * yet costs nothing, so it gets tried.
 *
 * @example
 * new BackendSet(brokers, { strategy: new P2cEwmaStrategy() })
 */
export class P2cEwmaStrategy implements BalancingStrategy {
  readonly name = 'least-latency'
  readonly #random: () => number

  constructor(random: () => number = Math.random) {
    this.#random = random
  }

  pick<B extends BackendView>(candidates: readonly B[]): B | undefined {
    if (candidates.length < 2) return candidates[0]
    const first = Math.floor(this.#random() * candidates.length)
    let second = Math.floor(this.#random() * (candidates.length - 1))
    if (second >= first) second++
    const a = candidates[first]!
    const b = candidates[second]!
    return cost(a) <= cost(b) ? a : b
  }
}

function cost(backend: BackendView): number {
  return (backend.latencyMs ?? 0) * (backend.outstanding + 1)
}
