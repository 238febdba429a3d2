import type { BalancingStrategy, StrategyName } from './balancing-strategy.js'
import { LeastOutstandingStrategy } from './least-outstanding-strategy.js'
import { P2cEwmaStrategy } from './p2c-ewma-strategy.js'
import { PriorityStrategy } from './priority-strategy.js'
import { RandomStrategy } from './random-strategy.js'
import { RoundRobinStrategy } from './round-robin-strategy.js'
import { WeightedStrategy } from './weighted-strategy.js'

/** Every built-in strategy name, for validation and documentation. */
export const STRATEGY_NAMES: readonly StrategyName[] = Object.freeze([
  'round-robin', 'random', 'weighted', 'least-outstanding', 'least-latency', 'priority',
])

/**
 * A new instance of a built-in strategy by its configuration name.
 *
 * @example
 * createStrategy('least-latency') // P2cEwmaStrategy
 */
export function createStrategy(name: StrategyName, random: () => number = Math.random): BalancingStrategy {
  switch (name) {
    case 'round-robin':
      return new RoundRobinStrategy()
    case 'random':
      return new RandomStrategy(random)
    case 'weighted':
      return new WeightedStrategy()
    case 'least-outstanding':
      return new LeastOutstandingStrategy()
    case 'least-latency':
      return new P2cEwmaStrategy(random)
    case 'priority':
      return new PriorityStrategy()
  }
}

/** True when `name` names a built-in strategy. */
export function isStrategyName(name: unknown): name is StrategyName {
  return typeof name === 'string' && (STRATEGY_NAMES as readonly string[]).includes(name)
}
