import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'
import { Ewma } from '../../src/balancing/ewma.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { probeBroker } from './broker-probe.js'

const FAST_PROBE_MS = 100
const FAST_WINDOW_MS = 5000

/** Options of `ProbeScheduler`. */
export interface ProbeSchedulerOptions {
  readonly set: BackendSet<BrokerEndpoint>
  readonly options: ResolvedBrokerPoolOptions
  readonly log: Logger
  /** After each probe, with its outcome (the set has been told already). */
  readonly onProbe: (backend: Backend<BrokerEndpoint>, error: unknown) => void
  /** Test seam: how a broker is probed. */
  readonly probe?: typeof probeBroker
  /** Test seam: the jitter source, from 0 to 1. */
  readonly random?: () => number
}

interface Schedule {
  timer: NodeJS.Timeout | undefined
  running: Promise<void> | undefined
  /** Until when a broker whose connection was just lost is probed at the fast cadence. */
  fastUntil: number
  /** Round trip of successful probes, for a probe timeout that fits the link. */
  readonly roundTrip: Ewma
}

/**
 * Probes every broker on its own client (CONNECT/CONNACK) and reports the
 * results to the backend set. A healthy broker is probed every
 * `probeIntervalMs`; a first failure is confirmed at once; a broker that is
 * rising is probed again at once. A down broker is probed every
 * `probeIntervalMs` too, with ±20 % jitter and no growing backoff, and every
 * 100 ms for 5 s after its connection was lost: a broker that comes back must
 * be served before the devices the balancer sends it reach it, and a refused
 * probe costs next to nothing.
 *
 * @example
 * const probes = new ProbeScheduler({ set, options, log, onProbe })
 * probes.start(); ...; await probes.stop()
 */
export class ProbeScheduler {
  readonly #set: BackendSet<BrokerEndpoint>
  readonly #options: ResolvedBrokerPoolOptions
  readonly #log: Logger
  readonly #onProbe: ProbeSchedulerOptions['onProbe']
  readonly #probe: typeof probeBroker
  readonly #random: () => number
  readonly #schedules = new Map<Backend<BrokerEndpoint>, Schedule>()
  #running = false

  constructor(options: ProbeSchedulerOptions) {
    this.#set = options.set
    this.#options = options.options
    this.#log = options.log
    this.#onProbe = options.onProbe
    this.#probe = options.probe ?? probeBroker
    this.#random = options.random ?? Math.random
  }

  /** Probes every broker now, then on schedule. */
  start(): void {
    this.#running = true
    for (const backend of this.#set.backends) {
      this.#schedules.set(backend, { timer: undefined, running: undefined, fastUntil: 0, roundTrip: new Ewma(30_000) })
      this.#schedule(backend, 0)
    }
  }

  /** Stops probing; resolves once running probes have ended. */
  async stop(): Promise<void> {
    this.#running = false
    for (const schedule of this.#schedules.values()) clearTimeout(schedule.timer)
    await Promise.all([...this.#schedules.values()].map((schedule) => schedule.running ?? Promise.resolve()))
  }

  /** A CONNACK round trip seen by a connection: as good a sample for the probe timeout as a probe's own. */
  observeRoundTrip(backend: Backend<BrokerEndpoint>, ms: number): void {
    this.#schedules.get(backend)?.roundTrip.observe(ms, Date.now())
  }

  /** A broker just went down: probe it on the down cadence from now (a running probe schedules itself). */
  wentDown(backend: Backend<BrokerEndpoint>): void {
    const schedule = this.#schedules.get(backend)
    if (schedule && !schedule.running) this.#schedule(backend, this.#downDelay(schedule))
  }

  /**
   * A live connection to the broker was lost: most often the broker is
   * restarting, and devices will be back on it within a second. Probe it at
   * once and every 100 ms for the next 5 s, so that the app is subscribed
   * there again as soon as it is back.
   */
  lost(backend: Backend<BrokerEndpoint>): void {
    const schedule = this.#schedules.get(backend)
    if (!schedule) return
    schedule.fastUntil = Date.now() + FAST_WINDOW_MS
    if (!schedule.running) this.#schedule(backend, 0)
  }

  #downDelay(schedule: Schedule): number {
    if (Date.now() < schedule.fastUntil) return FAST_PROBE_MS
    return Math.round(this.#options.health.probeIntervalMs * (0.8 + 0.4 * this.#random()))
  }

  #schedule(backend: Backend<BrokerEndpoint>, delayMs: number): void {
    const schedule = this.#schedules.get(backend)
    if (!schedule || !this.#running || schedule.running) return
    clearTimeout(schedule.timer)
    schedule.timer = setTimeout(() => {
      const probing = this.#run(backend, schedule)
      schedule.running = probing
      probing.catch((error: unknown) => this.#log.error(`broker probe of ${backend.id} failed unexpectedly`, { error }))
    }, delayMs)
  }

  async #run(backend: Backend<BrokerEndpoint>, schedule: Schedule): Promise<void> {
    const { health, connectTimeoutMs, clientId, protocolVersion } = this.#options
    const observed = schedule.roundTrip.value
    // Long enough for the link as observed, short enough to notice a dead one quickly; a down broker gets the
    // full connect timeout, so that a link that became slower can still come back.
    const timeoutMs = observed === undefined || backend.state === 'unhealthy'
      ? connectTimeoutMs
      : Math.min(connectTimeoutMs, Math.max(health.probeTimeoutMs, observed * 4))
    let next: number
    try {
      const rttMs = await this.#probe(backend.target, { clientId: `${clientId}-probe-${backend.index + 1}`, timeoutMs, protocolVersion })
      if (!this.#running) return
      schedule.roundTrip.observe(rttMs, Date.now())
      this.#set.reportSuccess(backend, rttMs)
      next = backend.state === 'healthy' ? health.probeIntervalMs : 0
      this.#onProbe(backend, undefined)
    } catch (error) {
      if (!this.#running) return
      this.#log.debug('broker probe failed', { broker: backend.id, error })
      this.#set.reportFailure(backend)
      // A first failure is confirmed at once rather than after a full interval.
      next = backend.state === 'unhealthy' ? this.#downDelay(schedule) : 0
      this.#onProbe(backend, error)
    } finally {
      schedule.running = undefined
    }
    this.#schedule(backend, next)
  }
}
