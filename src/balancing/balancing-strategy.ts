import type { BackendView } from './backend.js'

/** Names of the built-in strategies, as they appear in configuration. */
export type StrategyName = 'round-robin' | 'random' | 'weighted' | 'least-outstanding' | 'least-latency' | 'priority'

/**
 * Chooses one backend among the available ones. The set has already removed
 * unhealthy and ejected backends, so a strategy only ranks.
 *
 * @example
 * class FirstStrategy implements BalancingStrategy {
 *   readonly name = 'first'
 *   pick<B extends BackendView>(candidates: readonly B[]) { return candidates[0] }
 * }
 */
export interface BalancingStrategy {
  readonly name: string
  pick<B extends BackendView>(candidates: readonly B[]): B | undefined
}
