import type { Scenario, ScenarioContext, ScenarioResult } from './scenario-runner.js'

const INDEPENDENT = '3 independent Mosquittos'

/** 10 s into the run, SIGKILLs broker 2 and restarts it `downMs` later. */
function killBroker(downMs: number): (s: ScenarioContext) => Promise<void> {
  return async (s) => {
    await s.sleep(10_000)
    s.fault('SIGKILL broker-2')
    await s.topology.brokers[1]!.kill()
    await s.sleep(downMs)
    await s.topology.brokers[1]!.restart()
    s.fault('broker-2 restarted')
  }
}

/** Every 8 s, SIGTERMs the next broker and starts it again, as an upgrade does. */
async function rollingRestart(s: ScenarioContext): Promise<void> {
  for (const [index, broker] of s.topology.brokers.entries()) {
    await s.sleep(8000)
    s.fault(`restart broker-${index + 1}`)
    await broker.restart()
  }
}

/** 10 s into the run, sends `signal` to app 3 and, after `backMs`, starts it again (with the same settings). */
function signalApp(signal: NodeJS.Signals, backMs?: number): (s: ScenarioContext) => Promise<void> {
  return async (s) => {
    await s.sleep(10_000)
    s.fault(`${signal} app-3`)
    await s.apps[2]!.signal(signal)
    if (backMs === undefined) return
    await s.sleep(backMs)
    await s.startApp(2)
    s.fault('app-3 restarted')
  }
}

/** 10 s into the run, stops the primary; `during` runs while it is down; starts it again 60 s after it stopped. */
function primaryOutage(during?: (s: ScenarioContext) => Promise<void>): (s: ScenarioContext) => Promise<void> {
  return async (s) => {
    await s.sleep(10_000)
    s.fault('primary stopped')
    await s.topology.primary!.stop()
    const stoppedAt = Date.now()
    await during?.(s)
    await s.sleep(60_000 - (Date.now() - stoppedAt))
    await s.topology.primary!.restart()
    s.fault('primary restarted')
  }
}

/** The spool scenarios' app runs with this heap limit (held messages are on disk, not in memory). */
const SPOOL_HEAP_MB = 192

/** What a spool scenario must show: readings of one device connection stored in order, a bounded heap, the spool emptied. */
function spoolChecks(result: ScenarioResult): string[] {
  const problems: string[] = []
  if (result.outOfOrder > 0) problems.push(`${result.outOfOrder} readings stored before an earlier one of the same device connection`)
  if (result.maxHeapMb > SPOOL_HEAP_MB) problems.push(`an app's heap reached ${result.maxHeapMb.toFixed(0)} MB, over ${SPOOL_HEAP_MB} MB`)
  if (result.metrics.spooled === 0) problems.push('nothing was spooled')
  if (result.metrics.spoolMessages > 0) problems.push(`${result.metrics.spoolMessages} messages left in the spool`)
  return problems
}

/**
 * The deployment shapes and faults the package guarantees nothing lost in.
 * Every scenario keeps the package's defaults unless its shape demands a
 * setting (named in `shape`).
 */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'defaults',
    shape: `${INDEPENDENT}, 1 app, defaults`,
    faultLabel: 'none',
    apps: 1,
    publishMs: 20_000,
  },
  {
    name: 'broker-kill-5s',
    shape: `${INDEPENDENT}, 1 app`,
    faultLabel: 'a broker SIGKILLed, back after 5 s',
    apps: 1,
    publishMs: 35_000,
    script: killBroker(5000),
  },
  {
    name: 'broker-kill-30s',
    shape: `${INDEPENDENT}, 1 app`,
    faultLabel: 'a broker SIGKILLed, back after 30 s',
    apps: 1,
    publishMs: 55_000,
    script: killBroker(30_000),
  },
  {
    name: 'rolling-broker-restart',
    shape: `${INDEPENDENT}, 1 app`,
    faultLabel: 'every broker SIGTERMed and restarted, one after another',
    // A restarted broker without persistence knows no subscription until the app is back on it, about 100 ms later.
    guaranteed: false,
    apps: 1,
    publishMs: 45_000,
    script: rollingRestart,
  },
  {
    name: 'rolling-broker-restart-persistent',
    shape: `${INDEPENDENT} with persistence, 1 app`,
    faultLabel: 'every broker SIGTERMed and restarted, one after another',
    // Mosquitto 2.0.11 restores the app's session from its file, but not the session's $share subscriptions.
    guaranteed: false,
    apps: 1,
    brokerPersistence: true,
    publishMs: 45_000,
    script: rollingRestart,
  },
  {
    name: 'app-path-blackhole',
    shape: `${INDEPENDENT}, 1 app`,
    faultLabel: "the app's path to a broker blackholed 10 s",
    apps: 1,
    proxiedAppPaths: true,
    publishMs: 35_000,
    script: async (s) => {
      await s.sleep(10_000)
      s.fault("blackhole the app's path to broker-2")
      s.appPaths[1]!.setMode('blackhole')
      await s.sleep(10_000)
      s.appPaths[1]!.setMode('pass')
      s.fault('path restored')
    },
  },
  {
    name: 'scale-in',
    shape: `${INDEPENDENT}, 3 apps on $share`,
    faultLabel: 'an app SIGTERMed, not restarted',
    apps: 3,
    publishMs: 35_000,
    script: signalApp('SIGTERM'),
  },
  {
    name: 'app-kill-gone',
    shape: `${INDEPENDENT}, 3 apps on $share`,
    faultLabel: 'an app SIGKILLed, never back',
    apps: 3,
    publishMs: 40_000,
    script: signalApp('SIGKILL'),
  },
  {
    name: 'app-kill-back-5s-same-id',
    shape: `${INDEPENDENT}, 3 apps on $share, stable client ids (StatefulSet)`,
    faultLabel: 'an app SIGKILLed, back after 5 s with its id',
    apps: 3,
    publishMs: 35_000,
    appOptions: (index) => ({ clientId: `app-${index + 1}` }),
    script: signalApp('SIGKILL', 5000),
  },
  {
    name: 'app-kill-back-35s',
    shape: `${INDEPENDENT}, 3 apps on $share`,
    faultLabel: 'an app SIGKILLed, back after 35 s',
    apps: 3,
    publishMs: 60_000,
    script: signalApp('SIGKILL', 35_000),
  },
  {
    name: 'nats-failover',
    shape: '3-node NATS cluster (MQTT 3.1.1, JetStream R3), 1 app',
    faultLabel: 'the node the app is on SIGKILLed, back after 10 s',
    apps: 1,
    brokerKind: 'nats',
    // NATS speaks MQTT 3.1.1 only and has no shared subscriptions: what this broker demands, and nothing else.
    appOptions: () => ({ protocolVersion: 4 }),
    sharedRoutes: false,
    publishMs: 40_000,
    script: async (s) => {
      await s.sleep(10_000)
      const active = s.apps[0]!.activeBroker
      const node = s.topology.brokers.find((b) => `127.0.0.1:${b.port}` === active)
      if (!node) throw new Error(`the app reported no active broker (${String(active)})`)
      s.fault(`SIGKILL ${node.name}, the node the app is on`)
      await node.kill()
      await s.sleep(10_000)
      await node.restart()
      s.fault(`${node.name} restarted`)
    },
  },
  {
    name: 'primary-outage-60s-spool',
    shape: `${INDEPENDENT} at default limits, 1 app, healthGate spool, 480 readings/s`,
    faultLabel: 'the primary stopped for 60 s',
    apps: 1,
    readingsPerSecond: 8,
    spool: {},
    heapLimitMb: SPOOL_HEAP_MB,
    publishMs: 85_000,
    script: primaryOutage(),
    check: spoolChecks,
  },
  {
    name: 'primary-outage-60s-spool-app-kill',
    shape: `${INDEPENDENT} at default limits, 1 app with a stable id and its own spool (StatefulSet), 480 readings/s`,
    faultLabel: 'the primary stopped for 60 s; meanwhile the app SIGKILLed and started again at once, as its supervisor does',
    apps: 1,
    readingsPerSecond: 8,
    spool: {},
    heapLimitMb: SPOOL_HEAP_MB,
    appOptions: (index) => ({ clientId: `app-${index + 1}` }),
    publishMs: 85_000,
    script: primaryOutage(async (s) => {
      await s.sleep(30_000)
      s.fault('SIGKILL app-1 with messages in its spool')
      await s.apps[0]!.signal('SIGKILL')
      // Away for its start only (about 2.5 s): longer, at 480 readings/s, outgrows the brokers' default queue of 1000 per session.
      await s.startApp(0)
      s.fault('app-1 restarted')
    }),
    check: spoolChecks,
  },
  {
    name: 'primary-outage-60s-spool-full',
    shape: `${INDEPENDENT} at default limits, 1 app, a 128 KB spool, 480 readings/s`,
    faultLabel: 'the primary stopped for 60 s: the spool fills, then the brokers drop',
    // The spool is too small on purpose: what the brokers drop is lost, and must be what their counters say. Without
    // pings, everything the brokers queue for the app is a reading, so their drop counters count lost readings only.
    guaranteed: false,
    pings: false,
    apps: 1,
    readingsPerSecond: 8,
    spool: { maxBytes: 128 * 1024 },
    heapLimitMb: SPOOL_HEAP_MB,
    publishMs: 85_000,
    script: primaryOutage(),
    check: (result) => {
      const problems: string[] = []
      if (result.metrics.spoolFullWaits === 0) problems.push('the spool never stopped intake')
      if (result.lost === 0) problems.push('nothing was lost: the spool or the brokers held more than this scenario sets out to overflow')
      if (result.lost !== result.metrics.brokerDrops) problems.push(`lost ${result.lost}, but the brokers' drop counters say ${result.metrics.brokerDrops}`)
      if (result.outOfOrder > 0) problems.push(`${result.outOfOrder} readings stored out of order`)
      if (result.maxHeapMb > SPOOL_HEAP_MB) problems.push(`an app's heap reached ${result.maxHeapMb.toFixed(0)} MB, over ${SPOOL_HEAP_MB} MB`)
      if (result.metrics.spoolMessages > 0) problems.push(`${result.metrics.spoolMessages} messages left in the spool`)
      return problems
    },
  },
]
