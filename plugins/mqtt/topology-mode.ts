import type { BrokerPoolMode, EffectiveBrokerPoolMode } from './broker-pool-options.js'
import type { TopologyReport } from './topology-check.js'

/** The mode to run in, with what to say about it; `error` refuses the start. */
export interface ModeChoice {
  readonly mode: EffectiveBrokerPoolMode
  readonly warning?: string
  readonly error?: string
}

/**
 * The mode for what the canaries found: `'auto'` takes failover only for a
 * cluster, and all mode (which loses nothing on either kind, at the cost of
 * duplicates on a cluster) whenever it cannot tell; an explicit `'failover'`
 * over brokers that do not share messages is refused, since the app would
 * miss the traffic of every broker it is not connected to.
 *
 * @example
 * chooseMode('auto', report) // { mode: 'all' } for independent Mosquittos
 */
export function chooseMode(configured: BrokerPoolMode, report: TopologyReport): ModeChoice {
  const { verdict } = report
  if (verdict === 'cluster') {
    if (configured === 'all') return { mode: 'all', warning: "the brokers share messages (a cluster): in all mode each message arrives once per broker; use mode 'failover' or 'auto'" }
    return { mode: 'failover' }
  }
  if (verdict === 'unknown') {
    const why = report.reason ?? 'the check did not finish'
    if (configured === 'failover') return { mode: 'failover', warning: `could not check that the brokers share messages (${why}); failover mode loses what is published to a broker that does not` }
    if (configured === 'auto') return { mode: 'all', warning: `could not tell whether the brokers share messages (${why}); running in all mode, which loses nothing either way` }
    return { mode: 'all' }
  }
  const what = verdict === 'independent' ? 'the brokers do not share messages' : 'some brokers do not share messages with the others'
  if (configured === 'failover') {
    return {
      mode: 'failover',
      error: `mode 'failover' needs brokers that share messages (a cluster), but ${what}: the app would miss everything published to a broker it is not connected to. ` +
        "Use mode: 'all' (or 'auto'), or cluster or bridge the brokers.",
    }
  }
  if (verdict === 'partial') return { mode: 'all', warning: `${what} (bridged or partly clustered): running in all mode; messages seen by several brokers arrive more than once` }
  return { mode: 'all' }
}
