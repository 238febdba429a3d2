import type { Backend } from '../../src/balancing/backend.js'
import type { HealthCheckDefinition } from '../../src/health/health-check.js'
import type { Disposer } from '../../src/typed-event.js'
import type { BrokerDropWatch } from './broker-drop-watch.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { HoldDown } from './hold-down.js'
import type { TopologyGuard } from './topology-guard.js'

/** What the broker checks read: nothing but what the pool already knows. */
export interface BrokerHealthSources {
  readonly backends: readonly Backend<BrokerEndpoint>[]
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly drops: BrokerDropWatch
  readonly topology: TopologyGuard
  readonly intervalMs: number
  /** Re-run the checks when a broker goes down or up or starts dropping. */
  readonly watch: (recheck: () => void) => Disposer
}

/**
 * One non-critical check per broker, `broker/<id>`, reading what the pool's
 * own probes and connections found (no extra connection). It fails while the
 * broker is down, while it drops messages it accepted, and when it does not
 * share messages with the others in failover mode.
 *
 * @example
 * monitor.registerSource({ healthChecks: () => brokerHealthChecks(sources) })
 */
export function brokerHealthChecks(sources: BrokerHealthSources): HealthCheckDefinition[] {
  const { holdDown, drops, topology } = sources
  return sources.backends.map((backend) => ({
    name: `broker/${backend.id}`,
    componentType: 'mqtt-broker',
    critical: false,
    rise: 1,
    fall: 1,
    intervalMs: sources.intervalMs,
    watch: sources.watch,
    check: () => {
      if (backend.state === 'unknown') return { pending: true }
      if (backend.state === 'unhealthy') {
        throw new Error(holdDown.isHeld(backend) ? 'held out after misbehaving (late acknowledgements, refused subscriptions or redirects)' : 'its probes fail')
      }
      const episode = drops.episode(backend.id)
      if (episode) throw new Error(`it dropped ${episode.count} messages it had accepted since ${new Date(episode.since).toISOString()} (a client queue or in-flight limit)`)
      const mismatch = topology.mismatch(backend)
      if (mismatch) throw new Error(mismatch)
      return backend.latencyMs === undefined ? undefined : { observedValue: Math.round(backend.latencyMs * 100) / 100, observedUnit: 'ms' }
    },
  }))
}
