// node dist/test/bench/failover.bench.js: SIGKILLs the broker a publishing
// client is connected to, KILLS times, and measures how long publishes go
// unacknowledged and whether any message is lost or duplicated. It compares
// our BrokerPool with MQTT.js's own failover (its `servers` option), each on
// a fresh topology of 3 Mosquitto brokers. Progress goes to stderr; stdout
// holds the table and, as its last line, one JSON object.
import type { Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { connect } from 'mqtt'
import { BrokerPool } from '../../plugins/mqtt/index.js'
import { raceTimeout } from '../../src/routemq/race-timeout.js'
import { startTopology, type BrokerHandle, type Topology } from '../../src/testing/index.js'
import { IdCounter } from '../support/id-counter.js'
import { printTable } from '../support/print-table.js'

const KILLS = 8
const RATE_PER_SECOND = 1000
const TICK_MS = 10
const BEFORE_KILL_MS = 1000
const AFTER_KILL_MS = 2000
// Every wait below is bounded, so that a client that never recovers shows up
// as a number in the report instead of a benchmark that hangs.
const CONNECT_TIMEOUT_MS = 15_000
const ROUND_ACK_TIMEOUT_MS = 15_000
const BROKER_BACK_TIMEOUT_MS = 20_000
const DELIVERY_TIMEOUT_MS = 10_000
const CLOSE_TIMEOUT_MS = 10_000

type ClientName = 'ours' | 'mqttjs'

/** The little the benchmark needs from a client under test. */
interface ClientUnderTest {
  /** Resolves when a broker acknowledged the QoS 1 publish. */
  publish(topic: string, payload: string): Promise<unknown>
  /** `host:port` of the broker the client is connected to, or `undefined` while it is not connected. */
  connectedTo(): string | undefined
  /** Whether the client itself counts `broker` as usable again after its restart. */
  considersUp(broker: BrokerHandle): boolean
  close(): Promise<void>
}

/** One publish and when it was acknowledged. */
interface Sent {
  readonly id: string
  readonly at: number
  ackedAt: number | undefined
  error: unknown
}

interface ClientResult {
  readonly name: ClientName
  readonly kills: number
  readonly gaps: readonly number[]
  readonly lost: number
  readonly duplicates: number
  readonly unacked: number
  readonly published: number
  readonly completed: boolean
}

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

function brokerKey(broker: BrokerHandle): string {
  return `${broker.host}:${broker.port}`
}

async function openPool(topology: Topology): Promise<ClientUnderTest> {
  // Failover mode with its defaults otherwise (least-latency). The brokers are independent Mosquittos, which the
  // topology check would refuse for failover mode: this measures the publish path only, counted at every broker.
  const pool = new BrokerPool({ brokers: topology.brokers.map((broker) => broker.url), mode: 'failover', topologyCheck: false })
  pool.onFailover((event) => {
    log(`  ours: pool moved ${event.from ?? '?'} -> ${event.to}, its own gap ${event.gapMs} ms, replaying ${event.replaying}`)
  })
  // The pool bounds this itself (startTimeoutMs, default 30 s).
  await pool.connect(() => undefined)
  return {
    publish: (topic, payload) => pool.publish(topic, payload, { qos: 1 }),
    connectedTo: () => pool.stats.active,
    considersUp: (broker) => pool.stats.brokers.some((status) => status.id === brokerKey(broker) && status.state === 'healthy'),
    close: () => pool.close(),
  }
}

async function openMqttjs(topology: Topology): Promise<ClientUnderTest> {
  // Only `servers` is set; everything else (reconnectPeriod 1000 ms, clean session, MQTT 3.1.1) is MQTT.js's default.
  const client = connect({ servers: topology.brokers.map((broker) => ({ host: broker.host, port: broker.port })) })
  let current: string | undefined
  // Without a listener an 'error' event would throw; the reconnect logic handles the error itself.
  client.on('error', (error) => log(`  mqttjs: error: ${error.message}`))
  client.on('connect', () => {
    // MQTT.js rewrites client.options.port for each server it tries; the
    // socket's own remote end is the ground truth, so take that and say so
    // if the two ever disagree.
    const socket = client.stream as unknown as Socket
    current = `${socket.remoteAddress}:${socket.remotePort}`
    if (socket.remotePort !== client.options.port) {
      log(`  mqttjs: socket is connected to port ${socket.remotePort} but options.port says ${client.options.port}`)
    }
  })
  if (!(await waitUntil(() => client.connected, CONNECT_TIMEOUT_MS))) {
    client.end(true)
    throw new Error(`MQTT.js did not connect to any broker within ${CONNECT_TIMEOUT_MS} ms`)
  }
  return {
    publish: (topic, payload) => client.publishAsync(topic, payload, { qos: 1 }),
    connectedTo: () => (client.connected ? current : undefined),
    // MQTT.js keeps no health state: a restarted broker is simply tried when its turn comes.
    considersUp: () => true,
    // Forced: an unacknowledged publish would otherwise keep a graceful end waiting.
    close: () => client.endAsync(true),
  }
}

async function runClient(name: ClientName, open: (topology: Topology) => Promise<ClientUnderTest>): Promise<ClientResult> {
  const topology = await startTopology({ brokers: 3 })
  const sent: Sent[] = []
  const gaps: number[] = []
  let kills = 0
  let completed = false
  let counter: IdCounter | undefined
  let client: ClientUnderTest | undefined
  let lost = 0
  let duplicates = 0
  let unacked: number
  try {
    counter = await IdCounter.start(topology.brokers.map((broker) => broker.url), 'bench/#')
    client = await open(topology)
    for (let round = 1; round <= KILLS; round++) {
      const gap = await killRound(`${name.padEnd(6)} round ${round}/${KILLS}`, name, client, topology, sent)
      kills++
      if (gap !== undefined) gaps.push(gap)
    }
    completed = true
  } catch (error) {
    log(`${name}: run aborted after ${kills} kills: ${error instanceof Error ? error.message : String(error)}`)
  } finally {
    const ids = sent.map((record) => record.id)
    if (counter) {
      if (!(await settlesWithin(counter.waitFor(ids), DELIVERY_TIMEOUT_MS))) {
        log(`${name}: ${counter.missing(ids).length} ids still unseen by the subscribers after ${DELIVERY_TIMEOUT_MS} ms`)
      }
      lost = counter.missing(ids).length
      duplicates = counter.duplicates
    }
    // Counted before closing: closing the pool rejects whatever is still waiting.
    unacked = sent.filter((record) => record.ackedAt === undefined).length
    if (client && !(await settlesWithin(client.close(), CLOSE_TIMEOUT_MS))) log(`${name}: client did not close within ${CLOSE_TIMEOUT_MS} ms`)
    if (counter && !(await settlesWithin(counter.close(), CLOSE_TIMEOUT_MS))) log(`${name}: id counter did not close within ${CLOSE_TIMEOUT_MS} ms`)
    await topology.stop()
  }
  return { name, kills, gaps, lost, duplicates, unacked, published: sent.length, completed }
}

/**
 * One kill: publish for BEFORE_KILL_MS, SIGKILL the client's broker, publish
 * for AFTER_KILL_MS more, wait for the acknowledgements, restart the broker.
 * Returns the gap, or `undefined` when no publish made after the kill was
 * acknowledged.
 */
async function killRound(label: string, name: ClientName, client: ClientUnderTest, topology: Topology, sent: Sent[]): Promise<number | undefined> {
  if (!(await waitUntil(() => client.connectedTo() !== undefined, CONNECT_TIMEOUT_MS))) {
    throw new Error(`${label}: not connected to any broker after ${CONNECT_TIMEOUT_MS} ms`)
  }
  const round: Sent[] = []
  const settled: Promise<void>[] = []
  const publisher = publishAtRate(() => {
    const id = `${name}-${sent.length + 1}`
    const record: Sent = { id, at: performance.now(), ackedAt: undefined, error: undefined }
    sent.push(record)
    round.push(record)
    settled.push(
      client.publish(`bench/${id}`, id).then(
        () => void (record.ackedAt = performance.now()),
        (error: unknown) => void (record.error = error),
      ),
    )
  })

  await sleep(BEFORE_KILL_MS)
  const key = client.connectedTo()
  const victim = topology.brokers.find((broker) => brokerKey(broker) === key)
  if (!victim) {
    publisher.stop()
    throw new Error(`${label}: the client is on ${key ?? 'no broker'}, which is none of the topology's brokers`)
  }
  const killedAt = performance.now()
  await victim.kill()
  // Keeps the publishing window after the kill the same however long kill() took.
  await sleep(Math.max(0, AFTER_KILL_MS - (performance.now() - killedAt)))
  publisher.stop()

  if (!(await settlesWithin(Promise.all(settled), ROUND_ACK_TIMEOUT_MS))) {
    log(`${label}: ${round.filter((r) => r.ackedAt === undefined && r.error === undefined).length} publishes not settled within ${ROUND_ACK_TIMEOUT_MS} ms; counted as unacknowledged`)
  }
  const failed = round.filter((record) => record.error !== undefined)
  if (failed.length > 0) log(`${label}: ${failed.length} publishes rejected, first: ${String(failed[0]!.error)}`)
  const movedTo = topology.brokers.find((broker) => brokerKey(broker) === client.connectedTo())?.name ?? 'nowhere'

  const restartStarted = performance.now()
  await victim.restart()
  const back = await waitUntil(() => client.considersUp(victim), BROKER_BACK_TIMEOUT_MS)
  const backMs = Math.round(performance.now() - restartStarted)
  if (!back) log(`${label}: ${victim.name} not reported healthy by the client ${BROKER_BACK_TIMEOUT_MS} ms after its restart; going on`)

  const gap = firstAckAfter(round, killedAt)
  const unacked = round.filter((record) => record.ackedAt === undefined).length
  log(
    `${label}: killed ${victim.name} (${key}), now on ${movedTo}, gap ${gap === undefined ? 'none (nothing acknowledged)' : `${round1(gap)} ms`}, ` +
      `${round.length} published, ${unacked} unacknowledged, broker back for the client after ${backMs} ms`,
  )
  return gap
}

/** Time from the kill to the first acknowledgement of a publish made at or after it: only another broker can give that. */
function firstAckAfter(round: readonly Sent[], killedAt: number): number | undefined {
  let first: number | undefined
  for (const record of round) {
    if (record.at >= killedAt && record.ackedAt !== undefined && (first === undefined || record.ackedAt < first)) first = record.ackedAt
  }
  return first === undefined ? undefined : first - killedAt
}

/**
 * Calls `send` RATE_PER_SECOND times a second in bursts every TICK_MS. Each
 * tick sends what is due since the start, so a late timer (the event loop is
 * busy during a failover) cannot lower the rate.
 */
function publishAtRate(send: () => void): { stop(): void } {
  const started = performance.now()
  let count = 0
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) * RATE_PER_SECOND) / 1000)
    for (; count < due; count++) send()
  }, TICK_MS)
  return { stop: () => clearInterval(timer) }
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() >= deadline) return false
    await sleep(20)
  }
  return true
}

/** Whether `promise` settles (either way) within `ms`; never leaves a timer behind. */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return raceTimeout(promise.then(() => true, () => true), ms, () => false)
}

/** Nearest-rank percentile; NaN (null in JSON) when there is nothing to rank. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
}

function round1(value: number): number {
  return Math.round(value * 10) / 10
}

function ms(value: number): string {
  return Number.isNaN(value) ? '-' : `${round1(value)} ms`
}

const results: ClientResult[] = []
results.push(await runClient('ours', openPool))
results.push(await runClient('mqttjs', openMqttjs))

printTable(
  `Failover after SIGKILL of the connected broker: 3 Mosquitto brokers, QoS 1 at ${RATE_PER_SECOND} msg/s, ` +
    `gap = kill -> first PUBACK of a publish made after it (nearest rank: p95 of ${KILLS} kills is the max)`,
  [
    ['client', 'kills', 'gap p50', 'gap p95', 'gap max', 'lost', 'duplicates', 'unacknowledged', 'published'],
    ...results.map((r) => [
      r.name === 'ours' ? 'ours (BrokerPool)' : 'MQTT.js servers',
      String(r.kills),
      ms(percentile(r.gaps, 50)),
      ms(percentile(r.gaps, 95)),
      ms(percentile(r.gaps, 100)),
      String(r.lost),
      String(r.duplicates),
      String(r.unacked),
      String(r.published),
    ]),
  ],
)

const summary: Record<string, number> = { kills: Math.min(...results.map((r) => r.kills)) }
for (const r of results) {
  summary[`${r.name}_gap_p50_ms`] = round1(percentile(r.gaps, 50))
  summary[`${r.name}_gap_p95_ms`] = round1(percentile(r.gaps, 95))
  summary[`${r.name}_gap_max_ms`] = round1(percentile(r.gaps, 100))
  summary[`${r.name}_lost`] = r.lost
  summary[`${r.name}_duplicates`] = r.duplicates
  summary[`${r.name}_unacked`] = r.unacked
  summary[`${r.name}_published`] = r.published
  summary[`${r.name}_kills`] = r.kills
}
// An aborted run still reports what it measured, but must not pass for a clean one.
if (results.some((r) => !r.completed || r.gaps.length < r.kills)) process.exitCode = 1
console.log(JSON.stringify(summary))
