import type { Backend } from '../../src/balancing/backend.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { Subscription } from '../../src/routemq/plugin-api.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { EffectiveBrokerPoolMode, ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { BrokerTopologyError } from './errors/broker-topology-error.js'
import { checkBrokerTopology, describeTopology, type TopologyVerdict } from './topology-check.js'
import { chooseMode } from './topology-mode.js'

/**
 * What the pool knows of its brokers' topology: the mode it picks (or checks)
 * at start from the canaries, shared routes refused where brokers lack
 * `$share/`, and a broker that returns checked again against a healthy one.
 *
 * @example
 * const mode = await guard.choose()           // may throw BrokerTopologyError
 * guard.assertSharedSubscriptions(subscriptions)
 */
export class TopologyGuard {
  readonly #options: ResolvedBrokerPoolOptions
  readonly #log: Logger
  readonly #canaryTopic: string
  #verdict: TopologyVerdict | 'unchecked' = 'unchecked'
  #mode: EffectiveBrokerPoolMode | undefined
  /** Brokers that delivered through a `$share/` subscription, and those that answered the check. */
  #sharedSubscriptions: ReadonlySet<string> | undefined
  #reachable: readonly string[] = []
  /** Brokers that returned and do not share messages with the others although the pool runs in failover mode. */
  readonly #mismatched = new Map<Backend<BrokerEndpoint>, string>()

  constructor(options: ResolvedBrokerPoolOptions, log: Logger, canaryTopic: string) {
    this.#options = options
    this.#log = log
    this.#canaryTopic = canaryTopic
  }

  /** What the check found: `'unchecked'` when it is off or has not run. */
  get verdict(): TopologyVerdict | 'unchecked' {
    return this.#verdict
  }

  /** Whether every broker that answered the check delivered through a `$share/` subscription (true when unchecked). */
  get sharedSubscriptions(): boolean {
    const supported = this.#sharedSubscriptions
    return supported === undefined || this.#reachable.every((id) => supported.has(id))
  }

  /** The mode chosen at start; `undefined` before. */
  get mode(): EffectiveBrokerPoolMode | undefined {
    return this.#mode
  }

  /** `'auto'` resolved by the canaries, or the configured mode checked against them; throws `BrokerTopologyError` when it would lose messages. */
  async choose(): Promise<EffectiveBrokerPoolMode> {
    this.#mode = await this.#choose()
    return this.#mode
  }

  async #choose(): Promise<EffectiveBrokerPoolMode> {
    const o = this.#options
    if (o.brokers.length === 1) return o.mode === 'all' ? 'all' : 'failover'
    if (!o.topologyCheck) {
      this.#log.warn('the brokers were not checked for whether they share messages (topologyCheck: false)', { mode: o.mode })
      return o.mode as EffectiveBrokerPoolMode
    }
    const report = await checkBrokerTopology(o.brokers, this.#checkOptions(o.clientId))
    this.#verdict = report.verdict
    this.#sharedSubscriptions = report.sharedSubscriptions
    this.#reachable = report.reachable
    const choice = chooseMode(o.mode, report)
    if (choice.error) throw new BrokerTopologyError(choice.error)
    const fields = { mode: choice.mode, topology: report.verdict, brokers: describeTopology(report) }
    if (choice.warning) this.#log.warn(choice.warning, fields)
    else this.#log.info(`brokers checked: ${choice.mode} mode`, fields)
    return choice.mode
  }

  /** A `$share/` filter on brokers that take it as a plain topic would receive nothing: refused, naming the brokers. */
  assertSharedSubscriptions(subscriptions: readonly Subscription[]): void {
    const shared = subscriptions.find((s) => s.topic.startsWith('$share/'))
    const supported = this.#sharedSubscriptions
    if (!shared || !supported) return
    const lacking = this.#reachable.filter((id) => !supported.has(id))
    if (lacking.length === 0) return
    throw new BrokerTopologyError(
      `${lacking.join(', ')} did not deliver through a shared subscription ($share/...), so "${shared.topic}" would receive nothing there ` +
        '(NATS, for one, takes $share/ as a plain topic). Subscribe without shared: true and run one instance, or use brokers with shared subscriptions.',
    )
  }

  /** Why `backend` breaks the mode, when a check after its return found so. */
  mismatch(backend: Backend<BrokerEndpoint>): string | undefined {
    return this.#mismatched.get(backend)
  }

  /**
   * A broker came back: does it still share messages with `other` as the mode
   * assumes? True when a mismatch was found (failover mode over a broker that
   * does not share), which is logged at ERROR.
   */
  async recheck(backend: Backend<BrokerEndpoint>, other: Backend<BrokerEndpoint>): Promise<boolean> {
    const o = this.#options
    if (!o.topologyCheck) return false
    // Its own client ids: two rechecks at once must not take each other's connections over.
    const report = await checkBrokerTopology([backend.target, other.target], this.#checkOptions(`${o.clientId}-recheck-${backend.index + 1}`))
    if (report.verdict === 'unknown') return false
    const shares = report.verdict === 'cluster'
    if (this.#mode === 'failover' && !shares) {
      const problem = `${backend.id} does not share messages with ${other.id}, but the pool runs in failover mode: what devices publish to the broker the app is not connected to is lost. Set mode: 'all' (or 'auto') and restart`
      this.#mismatched.set(backend, problem)
      this.#log.error(problem, { broker: backend.id })
      return true
    }
    this.#mismatched.delete(backend)
    if (this.#mode === 'all' && shares) {
      this.#log.warn(`${backend.id} shares messages with ${other.id}: in all mode each message arrives once per broker (duplicates); mode 'auto' picks failover for a cluster at the next start`, { broker: backend.id })
    }
    return false
  }

  #checkOptions(clientIdPrefix: string): Parameters<typeof checkBrokerTopology>[1] {
    const o = this.#options
    return { clientIdPrefix, topic: this.#canaryTopic, protocolVersion: o.protocolVersion, connectTimeoutMs: o.connectTimeoutMs, timeoutMs: o.topologyCheckTimeoutMs }
  }
}
