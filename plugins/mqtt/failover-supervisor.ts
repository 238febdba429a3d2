import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import { DecorrelatedJitterBackoff } from '../../src/balancing/decorrelated-jitter-backoff.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import type { TypedEvent } from '../../src/typed-event.js'
import type { BrokerConnection } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import type { BrokerLinks } from './broker-links.js'
import type { HoldDown } from './hold-down.js'
import type { LiveConnections } from './live-connections.js'
import { findReferencedBroker } from './server-reference.js'
import type { WakeSignal } from '../../src/wake-signal.js'

/** The pool moved to another broker (failover mode). */
export interface FailoverEvent {
  /** The broker whose connection was lost, if any. */
  readonly from: string | undefined
  readonly to: string
  /** From noticing the loss to the new connection taking publishes, in ms. */
  readonly gapMs: number
  /** Publishes waiting to be sent again on the new connection. */
  readonly replaying: number
}

/** The active connection moved to another broker (failover mode), for whatever reason. */
export interface ActiveBrokerEvent {
  readonly from: string | undefined
  readonly to: string
  /** `'start'`, `'failover'` after a loss, or `'handover'` when failing back or following a redirect. */
  readonly reason: 'start' | 'failover' | 'handover'
}

/** Options of `FailoverSupervisor`. */
export interface FailoverSupervisorOptions {
  readonly options: ResolvedBrokerPoolOptions
  readonly set: BackendSet<BrokerEndpoint>
  readonly log: Logger
  readonly links: BrokerLinks
  readonly live: LiveConnections
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly wake: WakeSignal
  readonly running: () => boolean
  /** False while the pool hands its share back: a failback would close the connection in the middle of it. */
  readonly mayFailBack: () => boolean
  /** Publishes waiting to be resent, for the failover event. */
  readonly replaying: () => number
  readonly failover: TypedEvent<FailoverEvent>
  readonly activeChanged: TypedEvent<ActiveBrokerEvent>
  /** A connection takes publishes. */
  readonly connected: () => void
  /** Every failover (for stats). */
  readonly countFailover: () => void
  /** Every broker was tried and none is available. */
  readonly allDown: () => void
}

type ServeOutcome = 'lost' | 'handover' | 'closed'

/**
 * Failover mode: keeps exactly one connection, to the best healthy broker.
 * When it is lost, the next broker is connected, every route resubscribed
 * and what was in flight resent in order. Under the priority strategy it
 * fails back to a better-ranked broker as a planned handover (the old
 * connection lets its messages settle and disconnects before the new one is
 * made, since both use the same client id), and it follows an MQTT 5
 * "use another server" to a configured broker.
 *
 * @example
 * const supervisor = new FailoverSupervisor(options)
 * void supervisor.run()
 */
export class FailoverSupervisor {
  readonly #o: FailoverSupervisorOptions
  #previousActive: string | undefined
  /** The next connection should go to this broker (a redirect, or failing back). */
  #next: Backend<BrokerEndpoint> | undefined
  #handingOverTo: Backend<BrokerEndpoint> | undefined
  #redirectFrom: Backend<BrokerEndpoint> | undefined
  /** Ends the active connection's service for a planned handover. */
  #handover: (() => void) | undefined
  #lost: { readonly from: string; readonly at: number } | undefined

  constructor(options: FailoverSupervisorOptions) {
    this.#o = options
  }

  /** The broker of the active connection. */
  get active(): Backend<BrokerEndpoint> | undefined {
    return [...this.#o.live.entries()][0]?.[0]
  }

  /** The pool closes the active connection (its broker went down): the next one is a failover. */
  losing(backend: Backend<BrokerEndpoint>): void {
    if (this.#o.live.has(backend)) this.#lost ??= { from: backend.id, at: Date.now() }
  }

  async run(): Promise<void> {
    const { set, holdDown, options, links, wake } = this.#o
    const tried = new Set<Backend<BrokerEndpoint>>()
    const backoff = new DecorrelatedJitterBackoff({ baseMs: options.health.backoffBaseMs, capMs: options.health.backoffCapMs })
    while (this.#o.running()) {
      const backend = set.pick({ prefer: this.#preference(), exclude: new Set([...tried, ...holdDown.heldAmong(set.backends)]) })
      if (!backend) {
        if (set.available().length === 0) this.#o.allDown()
        tried.clear()
        if (await wake.idle(backoff.next())) backoff.reset()
        continue
      }
      tried.add(backend)
      const handover = this.#handingOverTo === backend
      this.#handingOverTo = undefined
      const connection = await links.establish(backend)
      if (!connection) {
        // A failed failback is not retried at every good probe: that would hand over in a loop.
        if (handover) holdDown.hold(backend, 'failing back to it failed')
        continue
      }
      tried.clear()
      backoff.reset()
      await this.#serve(backend, connection)
    }
  }

  /** Under the priority strategy, asks the active connection to hand over to a healthier-ranked broker. */
  considerFailBack(): void {
    const { options, set, holdDown, log } = this.#o
    if (options.strategy !== 'priority' || !this.#handover || this.#handingOverTo || !this.#o.mayFailBack()) return
    const active = this.active
    if (!active) return
    const better = set.pick({
      exclude: new Set(set.backends.filter((b) => b.index >= active.index || b.state !== 'healthy' || holdDown.isHeld(b))),
    })
    if (!better) return
    log.info('failing back to a preferred broker', { from: active.id, to: better.id })
    this.#next = better
    this.#handingOverTo = better
    this.#handover()
  }

  /** Uses the connection until it is lost or handed over, then takes back what it had in flight. */
  async #serve(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<ServeOutcome> {
    const { links, log } = this.#o
    if (!this.#o.running() || !connection.open) {
      await connection.close(0)
      return 'closed'
    }
    const lost = new Promise<ServeOutcome>((resolve) => connection.onClose(() => resolve('lost')))
    const handover = new Promise<ServeOutcome>((resolve) => (this.#handover = () => resolve('handover')))
    const offRedirect = connection.onRedirect((reference) => this.#redirect(reference, backend))
    const reason = this.#previousActive === undefined ? 'start' : this.#lost ? 'failover' : 'handover'
    this.#o.activeChanged.emit({ from: this.#previousActive, to: backend.id, reason })
    this.#previousActive = backend.id
    if (this.#lost) {
      this.#o.countFailover()
      const event: FailoverEvent = { from: this.#lost.from, to: backend.id, gapMs: Date.now() - this.#lost.at, replaying: this.#o.replaying() }
      log.warn('failed over to another broker', { ...event })
      this.#o.failover.emit(event)
    }
    this.#lost = undefined
    log.info('broker connected', { broker: backend.id })
    links.activate(backend, connection)
    this.#o.connected()
    this.considerFailBack()
    const outcome = await Promise.race([lost, handover])
    this.#handover = undefined
    offRedirect()
    if (outcome === 'handover') await this.#handOver(backend, connection)
    links.deactivate(backend, connection)
    const redirected = outcome === 'lost' && this.#redirectFrom === backend
    if (redirected) this.#redirectFrom = undefined
    if (this.#o.running() && outcome === 'lost' && !redirected) {
      log.warn('broker connection lost', { broker: backend.id })
      this.#lost ??= { from: backend.id, at: Date.now() }
      await links.lost(backend, connection)
    }
    return outcome
  }

  /**
   * A planned end of service (failing back): no new publishes, let the
   * messages delivered settle and publishes in flight be acknowledged, within
   * `closeTimeoutMs`, then disconnect cleanly. Same client id, so the new
   * connection is made only after this one is gone.
   */
  async #handOver(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    const { live, links, options } = this.#o
    live.delete(backend, connection)
    links.retiring.add(connection)
    try {
      // No unsubscribe: a persistent session then keeps what arrives meanwhile for the next connection.
      const deadline = Date.now() + options.closeTimeoutMs
      await raceTimeout(connection.inboundSettled(), options.closeTimeoutMs, () => undefined)
      await connection.close(Math.max(0, deadline - Date.now()))
    } finally {
      links.retiring.delete(connection)
    }
  }

  #redirect(reference: string, from: Backend<BrokerEndpoint>): void {
    const { options, set, log, holdDown } = this.#o
    const { host, port, broker } = findReferencedBroker(reference, options.brokers, from.target.port)
    const target = set.backends.find((b) => b.target === broker)
    if (target) {
      log.info('broker asked us to use another server', { from: from.id, to: target.id })
      this.#next = target
      this.#redirectFrom = from
      // A broker being evacuated must not be failed back to while it still answers probes.
      holdDown.hold(from, 'it asked clients to use another server')
    } else {
      log.warn('broker asked us to use a server that is not in the pool; picking among the configured ones', { from: from.id, reference: `${host}:${port}` })
    }
  }

  #preference(): ((backend: Backend<BrokerEndpoint>) => boolean) | undefined {
    const next = this.#next
    if (next) {
      this.#next = undefined
      return (backend) => backend === next
    }
    const region = this.#o.options.region
    return region === undefined ? undefined : (backend) => backend.region === region
  }
}
