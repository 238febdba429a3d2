import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { freePorts, startTopology, type Topology } from 'routemq-load-balancing/testing'
import { parsePrometheusText } from '../support/prometheus-text.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'
import { AppProcess } from './app-process.js'
import { DeviceFleet, type FleetCounts } from './device-fleet.js'
import { HaproxyBalancer } from './haproxy-balancer.js'
import type { ScenarioAppSettings } from './scenario-app.js'

/** What a scenario's fault script can do while the devices publish. */
export interface ScenarioContext {
  readonly topology: Topology
  /** The app instances, by index; a scenario may stop, kill and start them. */
  readonly apps: (AppProcess | undefined)[]
  /** The app's own paths to the brokers (one proxy per broker), when the scenario asked for them. */
  readonly appPaths: readonly TcpFaultProxy[]
  /** Starts (again) app instance `index` with its settings. */
  startApp(index: number): Promise<AppProcess>
  /** Marks the moment of the fault the scenario measures recovery from. */
  fault(what: string): void
  sleep(ms: number): Promise<void>
}

/** One deployment shape and one fault, run with real processes. */
export interface Scenario {
  readonly name: string
  /** The deployment, in a few words, for the table. */
  readonly shape: string
  /** The fault, in a few words, for the table. */
  readonly faultLabel: string
  /**
   * False for a shape the README says is not guaranteed (brokers restarted without persistence): its losses are
   * reported, and do not fail the suite. Default true.
   */
  readonly guaranteed?: boolean
  readonly apps: number
  /** Route the app's connections through fault proxies, so that its paths can be blackholed. */
  readonly proxiedAppPaths?: boolean
  /** How long the devices publish. */
  readonly publishMs: number
  /** Only what the shape demands of the app's options (e.g. a stable client id per instance); the rest stays at the defaults. */
  readonly appOptions?: (index: number) => ScenarioAppSettings['mqtt']
  /** The brokers: 3 independent Mosquittos (default), or a 3-node NATS cluster with MQTT. */
  readonly brokerKind?: 'mosquitto' | 'nats'
  /** Mosquitto keeps sessions, subscriptions and queued messages across restarts (the launcher's data directory). */
  readonly brokerPersistence?: boolean | { readonly autosaveIntervalSeconds?: number }
  /** The app's routes on `$share` (default true). */
  readonly sharedRoutes?: boolean
  /** Runs the faults while the devices publish; starts at the beginning of the publish window. */
  readonly script?: (context: ScenarioContext) => Promise<void>
  /** False: the devices send no pings, so that everything the app receives is a reading (default true). */
  readonly pings?: boolean
  /** Readings per second per device, when the scenario needs another rate than FLEET's. */
  readonly readingsPerSecond?: number
  /** Telemetry behind healthGate('primary') with a spool in the run's directory, one per app instance (kept across its restarts). */
  readonly spool?: { readonly maxBytes?: number }
  /** The app processes' heap limit (`--max-old-space-size`, MB); `check` can hold the reported heap to it. */
  readonly heapLimitMb?: number
  /**
   * What the run must show besides its losses; each problem returned fails the suite. Default: nothing more.
   * (A spool scenario asks for per-connection order, a bounded heap, or drops that match the losses.)
   */
  readonly check?: (result: ScenarioResult) => readonly string[]
}

/** What one run of a scenario measured. */
export interface ScenarioResult {
  readonly scenario: string
  readonly guaranteed: boolean
  readonly shape: string
  readonly fault: string
  readonly acknowledged: number
  readonly stored: number
  /** Acknowledged to a device by a broker, never stored. */
  readonly lost: number
  /** Extra times a reading was handled (at-least-once). */
  readonly duplicates: number
  readonly repliesExpected: number
  readonly repliesLate: number
  readonly repliesMissing: number
  /** Longest time from a device's publish to the reading's row, in ms. */
  readonly maxDelayMs: number
  /** From the fault until readings published after it were stored within 2 s again, in ms (0 without a fault). */
  readonly recoveryMs: number
  /** Failover mode: each failover the app instances reported, from noticing the loss to taking publishes again, in ms. */
  readonly failoverGapsMs: readonly number[]
  readonly lostSample: readonly string[]
  /** Readings stored before an earlier reading of the same device connection (the broker keeps one connection's order). */
  readonly outOfOrder: number
  /** The largest heap an app instance reported, in MB. */
  readonly maxHeapMb: number
  /** What the apps' /metrics said at the end (summed over the instances running then). */
  readonly metrics: { readonly brokerDrops: number; readonly spooled: number; readonly spoolReplayed: number; readonly spoolFullWaits: number; readonly spoolMessages: number }
  /** The app's logs and the balancer's config. */
  readonly directory: string
  /** The brokers' and databases' directories, with their logs. */
  readonly topologyDirectory: string
}

/** Devices and rates of every scenario: 60 devices, 4 readings/s each, new connections every ~10 s. */
export const FLEET = { devices: 60, readingsPerSecond: 4, churnMs: 10_000, pingEveryMs: 4000, replyWaitMs: 4000 } as const
const SETTLE_MS = 120_000
/** A run whose rows stopped growing this long has stored what it will (a spool replays thousands a second). */
const STALL_MS = 45_000
const SLOW_MS = 2000

/**
 * Runs `scenario` on its own topology (3 Mosquitto brokers, a PostgreSQL
 * primary), HAProxy in front of the brokers for the devices, the app as
 * separate processes, and counts every reading a broker acknowledged to a
 * device against the rows the app stored.
 */
export async function runScenario(scenario: Scenario, log: (line: string) => void = () => undefined): Promise<ScenarioResult> {
  const directory = await mkdtemp(join(tmpdir(), `scenario-${scenario.name}-`))
  // Kept after the run (the brokers' logs) until removeLogs: a run that lost something keeps its evidence.
  const topology = await startTopology({
    brokers: 3, postgres: true, brokerKind: scenario.brokerKind ?? 'mosquitto', keepDirectory: true,
    ...(scenario.brokerPersistence ? { brokerPersistence: scenario.brokerPersistence } : {}),
  })
  const cleanup: (() => Promise<unknown>)[] = [() => topology.stop()]
  const db = new pg.Pool({ connectionString: topology.primary!.url, max: 2 })
  // An idle connection cut by the primary's stop at the end is no news.
  db.on('error', () => undefined)
  cleanup.push(() => db.end())
  try {
    await db.query(`create table scenario_readings (
      device text not null, seq integer not null, conn integer not null, sent_at bigint not null, copies integer not null default 1,
      stored_at bigint not null default (extract(epoch from clock_timestamp()) * 1000)::bigint, primary key (device, seq))`)
    const appPaths = scenario.proxiedAppPaths
      ? await Promise.all(topology.brokers.map((b) => TcpFaultProxy.start({ target: { host: b.host, port: b.port } })))
      : []
    for (const proxy of appPaths) cleanup.push(() => proxy.close())
    const brokerUrls = appPaths.length > 0 ? appPaths.map((p) => `mqtt://127.0.0.1:${p.port}`) : topology.brokers.map((b) => b.url)
    const healthPorts = await freePorts(scenario.apps)
    const apps: (AppProcess | undefined)[] = new Array<AppProcess | undefined>(scenario.apps).fill(undefined)
    cleanup.push(async () => Promise.all(apps.map((app) => app?.signal('SIGKILL') ?? Promise.resolve(null))))
    const settings = (index: number): ScenarioAppSettings => ({
      brokers: brokerUrls,
      database: topology.primary!.url,
      healthPort: healthPorts[index]!,
      shared: scenario.sharedRoutes ?? true,
      ...(scenario.appOptions ? { mqtt: scenario.appOptions(index) } : {}),
      ...(scenario.spool ? { spool: { path: join(directory, `spool-app-${index + 1}`), ...scenario.spool } } : {}),
      ...(scenario.heapLimitMb ? { heapLimitMb: scenario.heapLimitMb } : {}),
    })
    let starts = 0
    const instances: AppProcess[] = []
    const startApp = async (index: number): Promise<AppProcess> => {
      const app = await AppProcess.start(`app-${index + 1}`, settings(index), join(directory, `app-${index + 1}.${++starts}.log`))
      apps[index] = app
      instances.push(app)
      return app
    }
    for (let i = 0; i < scenario.apps; i++) await startApp(i)
    // The balancer is rendered from the app's own broker settings, as a user renders it.
    const balancer = await HaproxyBalancer.start(directory, { ...scenario.appOptions?.(0), brokers: topology.brokers.map((b) => b.url) }, healthPorts.map((p) => `127.0.0.1:${p}`))
    cleanup.push(() => balancer.stop())

    const fleet = new DeviceFleet({ urls: [balancer.url], ...FLEET, readingsPerSecond: scenario.readingsPerSecond ?? FLEET.readingsPerSecond, ...(scenario.pings === false ? { pingEveryMs: 0 } : {}) })
    await fleet.start()
    const started = Date.now()
    let faultAt: number | undefined
    const context: ScenarioContext = {
      topology, apps, appPaths, startApp,
      fault: (what) => {
        faultAt ??= Date.now()
        log(`  ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`)
      },
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    }
    const script = scenario.script?.(context) ?? Promise.resolve()
    await Promise.all([script, context.sleep(scenario.publishMs)])
    const counts = await fleet.stop()
    log(`  published for ${((Date.now() - started) / 1000).toFixed(1)} s: ${counts.acknowledgedTotal} acknowledged, ${counts.connections} device connections`)

    const stored = await settle(db, counts)
    const lostIds: string[] = []
    for (const [device, seqs] of counts.acknowledged) {
      const have = stored.rows.get(device)
      for (const seq of seqs) if (!have?.has(seq)) lostIds.push(`${device}#${seq}`)
    }
    const metrics = await appMetrics(apps, healthPorts)
    const outOfOrder = await countOutOfOrder(db)
    const timing = await db.query<{ sent_at: string; stored_at: string }>('select sent_at, stored_at from scenario_readings')
    let maxDelayMs = 0
    let lastSlow = 0
    for (const row of timing.rows) {
      const sent = Number(row.sent_at)
      const delay = Number(row.stored_at) - sent
      maxDelayMs = Math.max(maxDelayMs, delay)
      if (faultAt !== undefined && sent >= faultAt && delay > SLOW_MS) lastSlow = Math.max(lastSlow, sent + delay)
    }
    return {
      scenario: scenario.name,
      guaranteed: scenario.guaranteed ?? true,
      shape: scenario.shape,
      fault: scenario.faultLabel,
      acknowledged: counts.acknowledgedTotal,
      stored: stored.total,
      lost: lostIds.length,
      duplicates: stored.duplicates,
      repliesExpected: counts.repliesExpected,
      repliesLate: counts.repliesLate,
      repliesMissing: counts.repliesMissing,
      maxDelayMs,
      recoveryMs: faultAt === undefined || lastSlow === 0 ? 0 : lastSlow - faultAt,
      failoverGapsMs: instances.flatMap((app) => app.events.filter((e) => e.event === 'failover').map((e) => e.gapMs as number)),
      lostSample: lostIds.slice(0, 10),
      outOfOrder,
      maxHeapMb: Math.max(0, ...instances.flatMap((app) => app.events.filter((e) => e.event === 'heap').map((e) => e.mb as number))),
      metrics,
      directory,
      topologyDirectory: topology.directory,
    }
  } finally {
    while (cleanup.length > 0) await cleanup.pop()!().catch(() => undefined)
  }
}

/** Readings stored before a reading with a lower number sent on the same device connection. */
async function countOutOfOrder(db: pg.Pool): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`select count(*) as n from (
    select seq, lag(seq) over (partition by device, conn order by stored_at, seq) as previous from scenario_readings) ordered
    where seq < previous`)
  return Number(rows[0]!.n)
}

/** Sums, over the app instances running now, what their /metrics say about broker drops and the spool. */
async function appMetrics(apps: readonly (AppProcess | undefined)[], ports: readonly number[]): Promise<ScenarioResult['metrics']> {
  const totals = { brokerDrops: 0, spooled: 0, spoolReplayed: 0, spoolFullWaits: 0, spoolMessages: 0 }
  const names: Readonly<Record<string, keyof typeof totals>> = {
    routemq_pool_backend_dropped_messages_total: 'brokerDrops',
    routemq_spooled_messages_total: 'spooled',
    routemq_spool_replayed_total: 'spoolReplayed',
    routemq_spool_full_waits_total: 'spoolFullWaits',
    routemq_spool_messages: 'spoolMessages',
  }
  for (const [index, app] of apps.entries()) {
    if (!app?.running) continue
    const families = parsePrometheusText(await (await fetch(`http://127.0.0.1:${ports[index]}/metrics`)).text())
    for (const [metric, key] of Object.entries(names)) for (const sample of families.get(metric)?.samples ?? []) totals[key] += sample.value
  }
  return totals
}

/** Removes a run's logs (kept when something was lost). */
export async function removeLogs(result: ScenarioResult): Promise<void> {
  await rm(result.directory, { recursive: true, force: true })
  await rm(result.topologyDirectory, { recursive: true, force: true })
}

interface Stored {
  readonly rows: Map<string, Set<number>>
  readonly total: number
  readonly duplicates: number
}

/** Waits until every acknowledged reading is stored, or no row was added for `STALL_MS`, or for `SETTLE_MS` at most. */
async function settle(db: pg.Pool, counts: FleetCounts): Promise<Stored> {
  const deadline = Date.now() + SETTLE_MS
  let lastTotal = -1
  let lastProgress = Date.now()
  for (;;) {
    const { rows } = await db.query<{ device: string; seq: number; copies: number }>('select device, seq, copies from scenario_readings')
    const stored = new Map<string, Set<number>>()
    let duplicates = 0
    for (const row of rows) {
      let seqs = stored.get(row.device)
      if (!seqs) stored.set(row.device, (seqs = new Set()))
      seqs.add(row.seq)
      duplicates += row.copies - 1
    }
    let missing = 0
    for (const [device, seqs] of counts.acknowledged) for (const seq of seqs) if (!stored.get(device)?.has(seq)) missing++
    if (rows.length !== lastTotal) {
      lastTotal = rows.length
      lastProgress = Date.now()
    }
    if (missing === 0 || Date.now() > deadline || Date.now() - lastProgress > STALL_MS) return { rows: stored, total: rows.length, duplicates }
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
}
