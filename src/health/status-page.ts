import { checkOptions } from '../routemq/plugin-api.js'
import type { Disposer } from '../typed-event.js'
import type { HealthMonitor } from './health-monitor.js'
import { STATUS_PAGE_OPTIONS_SHAPE } from './status-page-options-shape.js'
import { statusPageHtml } from './status-page-html.js'
import { statusReport, type StatusGate, type StatusReport } from './status-page-report.js'
import {
  isStatusBrokerPool, isStatusLookups, isStatusReplicaPool, type StatusApplication, type StatusBrokerPool, type StatusLookups, type StatusReplicaPool,
} from './status-page-sources.js'

/** Options of the status page (`health.statusPage`). */
export interface StatusPageOptions {
  /** How often the open page asks for fresh figures, in ms: 500 to 60 000. Default 2000. */
  readonly refreshMs?: number
}

/** What the page reads besides what it is told to observe. */
export interface StatusPageContext {
  readonly monitor: HealthMonitor
  /** Whether the app's transport is connected; `undefined` while there is none. */
  readonly transportConnected?: () => boolean | undefined
}

/**
 * The data behind `/status` and `/status.json`: the monitor's checks, and
 * what it is told to observe (the application, the pools, the resolver, the
 * gates), all read when a report is asked for. Publishes are counted per
 * broker as they complete, the one figure the pools do not keep per backend.
 *
 * @example
 * const page = new StatusPage({ refreshMs: 5000 }, { monitor })
 * page.observeSource(brokers)
 * page.report().brokers?.rows
 */
export class StatusPage {
  readonly refreshMs: number
  readonly #context: StatusPageContext
  readonly #started = Date.now()
  readonly #html: string
  readonly #apps = new Set<StatusApplication>()
  readonly #brokers = new Set<StatusBrokerPool>()
  readonly #replicas = new Set<StatusReplicaPool>()
  readonly #lookups = new Set<StatusLookups>()
  readonly #gates = new Set<StatusGate>()
  readonly #publishes = new Map<string, { ok: number; failed: number }>()

  constructor(options: StatusPageOptions, context: StatusPageContext) {
    checkOptions(options, STATUS_PAGE_OPTIONS_SHAPE, 'health.statusPage')
    this.refreshMs = options.refreshMs ?? 2000
    this.#context = context
    this.#html = statusPageHtml(this.refreshMs)
  }

  /** The page itself: the same document every time; its script fetches the figures. */
  get html(): string {
    return this.#html
  }

  /** Reads the application's state and message counters. */
  observeApplication(app: StatusApplication): Disposer {
    this.#apps.add(app)
    return () => this.#apps.delete(app)
  }

  /** A broker pool, a replica pool or an address resolver; anything else is not shown. */
  observeSource(source: object): Disposer {
    const disposers: Disposer[] = []
    if (isStatusBrokerPool(source)) {
      this.#brokers.add(source)
      const off = source.onRequest(({ backend, failed }) => {
        let counts = this.#publishes.get(backend)
        if (!counts) this.#publishes.set(backend, (counts = { ok: 0, failed: 0 }))
        if (failed) counts.failed++
        else counts.ok++
      })
      disposers.push(off, () => this.#brokers.delete(source))
    }
    if (isStatusReplicaPool(source)) {
      this.#replicas.add(source)
      disposers.push(() => this.#replicas.delete(source))
    }
    if (isStatusLookups(source)) {
      this.#lookups.add(source)
      disposers.push(() => this.#lookups.delete(source))
    }
    return () => {
      for (const dispose of disposers.splice(0)) dispose()
    }
  }

  /** Reads a health gate's state and counters. */
  observeGate(gate: StatusGate): Disposer {
    this.#gates.add(gate)
    return () => this.#gates.delete(gate)
  }

  /** The figures as they are now. */
  report(): StatusReport {
    const monitor = this.#context.monitor
    const now = Date.now()
    return statusReport({
      summary: monitor.summary(),
      isHealthy: (names) => monitor.isHealthy(names),
      uptimeSeconds: (now - this.#started) / 1000,
      now,
      app: first(this.#apps),
      transportConnected: this.#context.transportConnected?.(),
      // One app has one transport and one replica pool; a second of either would be another app's.
      brokers: first(this.#brokers),
      publishes: this.#publishes,
      replicas: first(this.#replicas),
      lookups: [...this.#lookups],
      gates: [...this.#gates],
    })
  }
}

function first<T>(set: ReadonlySet<T>): T | undefined {
  for (const value of set) return value
  return undefined
}
