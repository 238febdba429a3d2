import type { DispatchStats } from '../routemq/plugin-api.js'
import type { HealthStatus, HealthSummary } from './health-check.js'
import type { HealthGateStats } from './health-gate.js'
import { scrubSecrets } from './scrub-secrets.js'
import type { StatusApplication, StatusBrokerPool, StatusLookups, StatusReplicaPool } from './status-page-sources.js'

/** A backend's state on the page: `up` and `down` are the pool's view; `unknown` before its first probe. */
export type StatusState = 'up' | 'down' | 'unknown'

/** One broker row. */
export interface BrokerRow {
  readonly id: string
  readonly state: StatusState
  readonly connected: boolean
  /** This instance's active broker (failover mode). */
  readonly active: boolean
  readonly latencyMs: number | null
  readonly outstanding: number
  readonly region: string | null
  /** Publishes a broker acknowledged since the page started counting, and those that failed on it. */
  readonly published: number
  readonly publishFailures: number
  readonly dropped: number
}

/** The primary's row. */
export interface PrimaryRow {
  readonly id: string | null
  readonly state: StatusState
  readonly queries: number
  readonly errors: number
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly connections: string
}

/** One replica row. */
export interface ReplicaRow {
  readonly id: string
  readonly state: StatusState
  /** `false` once it is no longer in recovery (promoted). */
  readonly inRecovery: boolean | null
  readonly lagMs: number | null
  readonly lagBytes: number | null
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  readonly outstanding: number
  readonly connections: string
  readonly queries: number
  readonly errors: number
  readonly region: string | null
}

/** One health gate row. */
export interface GateRow {
  readonly dependencies: string
  readonly mode: 'hold' | 'reject'
  /** `open` while its dependencies are healthy; `holding` or `rejecting` (its mode) while not. */
  readonly state: 'open' | 'holding' | 'rejecting'
  readonly held: number
  readonly heldTotal: number
  readonly released: number
  readonly rejected: number
  readonly spooled: number | null
}

/** Backends by region, as the pools tag them. */
export interface RegionRow {
  readonly region: string
  readonly brokersUp: number
  readonly brokers: number
  readonly replicasUp: number
  readonly replicas: number
}

/** One health check row. */
export interface CheckRow {
  readonly name: string
  readonly critical: boolean
  readonly state: StatusState
  readonly latencyMs: number | null
  readonly observed: string | null
  readonly error: string | null
  /** Epoch ms of the last state change. */
  readonly changedAt: number | null
}

/** What `/status.json` serves and `/status` shows. No URL, password or connection string: ids and texts are scrubbed. */
export interface StatusReport {
  readonly generatedAt: string
  readonly status: HealthStatus
  readonly app: { readonly state: string | null; readonly transportConnected: boolean | null; readonly uptimeSeconds: number }
  readonly brokers: {
    readonly mode: string | null
    readonly failovers: number
    readonly published: number
    readonly acknowledged: number
    readonly buffered: number
    readonly rows: readonly BrokerRow[]
  } | null
  readonly database: {
    readonly primary: PrimaryRow
    readonly reads: number
    readonly writes: number
    readonly readRetries: number
    readonly fallbacksToPrimary: number
    readonly replicas: readonly ReplicaRow[]
  } | null
  readonly gates: readonly GateRow[]
  readonly regions: readonly RegionRow[]
  readonly checks: readonly CheckRow[]
  /** Counters: the application's messages by outcome, and address lookups by reason when there is a resolver. */
  readonly counters: Readonly<Record<string, number>>
}

/** A gate as the page reads it: a `HealthGate`. */
export interface StatusGate {
  readonly dependencies: readonly string[]
  readonly mode: 'hold' | 'reject'
  readonly stats: HealthGateStats
  /** The monitor the gate asks, when it has its own. */
  readonly monitor?: { isHealthy(names: readonly string[]): boolean } | undefined
}

/** What one report is made from, read at the moment of asking. */
export interface StatusInputs {
  readonly summary: HealthSummary
  readonly isHealthy: (names: readonly string[]) => boolean
  readonly uptimeSeconds: number
  readonly now: number
  readonly app: StatusApplication | undefined
  readonly transportConnected: boolean | undefined
  readonly brokers: StatusBrokerPool | undefined
  /** Publishes per broker id since counting began. */
  readonly publishes: ReadonlyMap<string, { readonly ok: number; readonly failed: number }>
  readonly replicas: StatusReplicaPool | undefined
  readonly lookups: readonly StatusLookups[]
  readonly gates: readonly StatusGate[]
}

/** The application's counters, by the words the page shows them under. */
const COUNTED: readonly (readonly [keyof DispatchStats, string])[] = [
  ['received', 'received'], ['handled', 'handled'], ['failed', 'failed'], ['inFlight', 'in flight'], ['unmatched', 'unmatched'],
  ['malformed', 'malformed'], ['refused', 'refused'], ['deadLettered', 'dead-lettered'], ['deadLetterRefused', 'dead letter refused'],
  ['withheld', 'withheld'], ['dropped', 'dropped'], ['duplicateCopies', 'duplicate copies'],
]

/**
 * The status page's data, from the same sources as `/health`, `/ready` and
 * `/metrics`: the monitor's summary, the pools' stats, the gates' counters.
 *
 * @example
 * const report = statusReport({ summary: monitor.summary(), ... })
 * report.brokers?.rows[0]?.state // 'up'
 */
export function statusReport(inputs: StatusInputs): StatusReport {
  const brokers = brokerSection(inputs)
  const database = databaseSection(inputs.replicas)
  return {
    generatedAt: new Date(inputs.now).toISOString(),
    status: inputs.summary.status,
    app: {
      state: inputs.app?.state ?? null,
      transportConnected: inputs.transportConnected ?? null,
      uptimeSeconds: Math.round(inputs.uptimeSeconds),
    },
    brokers,
    database,
    gates: inputs.gates.map((gate) => gateRow(gate, inputs.isHealthy)),
    regions: regionRows(brokers?.rows ?? [], database?.replicas ?? []),
    checks: inputs.summary.checks.map((check) => ({
      name: text(check.name),
      critical: check.critical,
      state: stateOf(check.state),
      latencyMs: round(check.latencyMs),
      observed: check.observation?.observedValue === undefined
        ? null
        : text(`${check.observation.observedValue}${check.observation.observedUnit ? ` ${check.observation.observedUnit}` : ''}`),
      error: check.state === 'healthy' || check.lastError === undefined ? null : text(check.lastError),
      changedAt: check.changedAt ?? null,
    })),
    counters: counters(inputs),
  }
}

function brokerSection(inputs: StatusInputs): StatusReport['brokers'] {
  const pool = inputs.brokers
  if (!pool) return null
  const stats = pool.stats
  return {
    mode: stats.mode === undefined ? null : text(stats.mode),
    failovers: stats.failovers,
    published: stats.published,
    acknowledged: stats.acknowledged,
    buffered: stats.buffered,
    rows: stats.brokers.map((broker) => {
      const publishes = inputs.publishes.get(broker.id)
      return {
        id: text(broker.id),
        state: stateOf(broker.state),
        connected: broker.connected,
        active: stats.active === broker.id,
        latencyMs: round(broker.latencyMs),
        outstanding: broker.outstanding,
        region: broker.region === undefined ? null : text(broker.region),
        published: publishes?.ok ?? 0,
        publishFailures: publishes?.failed ?? 0,
        dropped: broker.dropped,
      }
    }),
  }
}

function databaseSection(pool: StatusReplicaPool | undefined): StatusReport['database'] {
  if (!pool) return null
  const stats = pool.stats
  const primary = stats.primary
  return {
    primary: {
      id: primary.id === undefined ? null : text(primary.id),
      state: primary.id === undefined ? 'unknown' : primary.healthy ? 'up' : 'down',
      queries: primary.queries,
      errors: primary.errors,
      p50Ms: round(primary.p50LatencyMs),
      p99Ms: round(primary.p99LatencyMs),
      connections: connections(primary.connections),
    },
    reads: stats.reads,
    writes: stats.writes,
    readRetries: stats.readRetries,
    fallbacksToPrimary: stats.fallbacksToPrimary,
    replicas: stats.replicas.map((replica) => ({
      id: text(replica.id),
      state: stateOf(replica.state),
      inRecovery: replica.inRecovery ?? null,
      lagMs: round(replica.lagMs),
      lagBytes: replica.lagBytes ?? null,
      p50Ms: round(replica.p50LatencyMs),
      p99Ms: round(replica.p99LatencyMs),
      outstanding: replica.outstanding,
      connections: connections(replica.connections),
      queries: replica.queries,
      errors: replica.errors,
      region: replica.region === undefined ? null : text(replica.region),
    })),
  }
}

function gateRow(gate: StatusGate, isHealthy: (names: readonly string[]) => boolean): GateRow {
  const stats = gate.stats
  return {
    dependencies: text(gate.dependencies.join(', ')),
    mode: gate.mode,
    state: (gate.monitor ? gate.monitor.isHealthy(gate.dependencies) : isHealthy(gate.dependencies)) ? 'open' : gate.mode === 'hold' ? 'holding' : 'rejecting',
    held: stats.held,
    heldTotal: stats.heldTotal,
    released: stats.released,
    rejected: Object.values(stats.rejected).reduce((sum, count) => sum + count, 0),
    spooled: stats.spool ? stats.spool.messages : null,
  }
}

/** Regions named by brokers or replicas, in name order; untagged backends are left out. */
function regionRows(brokers: readonly BrokerRow[], replicas: readonly ReplicaRow[]): RegionRow[] {
  const regions = new Map<string, { brokersUp: number; brokers: number; replicasUp: number; replicas: number }>()
  const row = (region: string) => {
    let entry = regions.get(region)
    if (!entry) regions.set(region, (entry = { brokersUp: 0, brokers: 0, replicasUp: 0, replicas: 0 }))
    return entry
  }
  for (const broker of brokers) {
    if (broker.region === null) continue
    const entry = row(broker.region)
    entry.brokers++
    if (broker.state === 'up') entry.brokersUp++
  }
  for (const replica of replicas) {
    if (replica.region === null) continue
    const entry = row(replica.region)
    entry.replicas++
    if (replica.state === 'up') entry.replicasUp++
  }
  return [...regions].sort(([a], [b]) => a.localeCompare(b)).map(([region, counts]) => ({ region, ...counts }))
}

function counters(inputs: StatusInputs): Record<string, number> {
  const out: Record<string, number> = {}
  const stats = inputs.app?.stats
  if (stats) for (const [key, words] of COUNTED) out[`messages ${words}`] = stats[key]
  for (const source of inputs.lookups) {
    out['geo lookups'] = (out['geo lookups'] ?? 0) + source.stats.lookups
    out['geo cache hits'] = (out['geo cache hits'] ?? 0) + source.stats.cacheHits
    for (const [reason, count] of Object.entries(source.stats.reasons)) {
      const key = `geo ${text(reason)}`
      out[key] = (out[key] ?? 0) + count
    }
  }
  return out
}

function stateOf(state: 'unknown' | 'healthy' | 'unhealthy'): StatusState {
  return state === 'healthy' ? 'up' : state === 'unhealthy' ? 'down' : 'unknown'
}

function connections(counts: { readonly total: number; readonly idle: number; readonly waiting: number }): string {
  return `${counts.total} (${counts.idle} idle, ${counts.waiting} waiting)`
}

function round(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value * 10) / 10
}

/** Ids, regions and errors come from configuration and servers: never a URL's user info or a password on the page. */
function text(value: string): string {
  return scrubSecrets(value)
}
