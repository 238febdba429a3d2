import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import { DecorrelatedJitterBackoff } from '../../src/balancing/decorrelated-jitter-backoff.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { BrokerConnection } from './broker-connection.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import type { BrokerLinks } from './broker-links.js'
import type { HoldDown } from './hold-down.js'
import type { WakeSignal } from '../../src/wake-signal.js'

/** Options of `AllBrokersSupervisor`. */
export interface AllBrokersSupervisorOptions {
  readonly options: ResolvedBrokerPoolOptions
  readonly set: BackendSet<BrokerEndpoint>
  readonly log: Logger
  readonly links: BrokerLinks
  readonly holdDown: HoldDown<Backend<BrokerEndpoint>>
  readonly wake: WakeSignal
  readonly running: () => boolean
  /** A connection takes publishes. */
  readonly connected: () => void
}

/**
 * All mode: keeps a connection to every broker that is healthy, each with
 * every route subscribed. A broker that comes up is connected at once (the
 * probes wake the loop), so that the app is subscribed there before devices
 * the balancer sends there publish.
 *
 * @example
 * const supervisor = new AllBrokersSupervisor(options)
 * void supervisor.run()
 */
export class AllBrokersSupervisor {
  readonly #o: AllBrokersSupervisorOptions

  constructor(options: AllBrokersSupervisorOptions) {
    this.#o = options
  }

  run(): Promise<void> {
    return Promise.all(this.#o.set.backends.map((backend) => this.#maintain(backend))).then(() => undefined)
  }

  async #maintain(backend: Backend<BrokerEndpoint>): Promise<void> {
    const { options, links, holdDown, wake } = this.#o
    const backoff = new DecorrelatedJitterBackoff({ baseMs: options.health.backoffBaseMs, capMs: options.health.backoffCapMs })
    while (this.#o.running()) {
      if (!backend.isAvailable(Date.now()) || holdDown.isHeld(backend)) {
        if (await wake.idle(backoff.next())) backoff.reset()
        continue
      }
      const connection = await links.establish(backend)
      if (!connection) {
        if (this.#o.running() && (await wake.idle(backoff.next()))) backoff.reset()
        continue
      }
      backoff.reset()
      await this.#serve(backend, connection)
    }
  }

  async #serve(backend: Backend<BrokerEndpoint>, connection: BrokerConnection): Promise<void> {
    const { links, log, holdDown } = this.#o
    if (!this.#o.running() || !connection.open) {
      await connection.close(0)
      return
    }
    const lost = new Promise<void>((resolve) => connection.onClose(() => resolve()))
    let redirected = false
    const offRedirect = connection.onRedirect(() => {
      // Every broker is connected already: a broker being evacuated is simply held out for a while.
      redirected = true
      holdDown.hold(backend, 'it asked clients to use another server')
    })
    log.info('broker connected', { broker: backend.id })
    links.activate(backend, connection)
    this.#o.connected()
    await lost
    offRedirect()
    links.deactivate(backend, connection)
    if (this.#o.running() && !redirected) {
      log.warn('broker connection lost', { broker: backend.id })
      await links.lost(backend, connection)
    }
  }
}
