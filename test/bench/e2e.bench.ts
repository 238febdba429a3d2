// npm run bench:e2e: what an app on this package gets end to end, beside a
// hand-written subscriber doing the same work, in one run on one Mosquitto
// (the launcher's default settings) and one PostgreSQL primary with a
// streaming replica:
//
//   devices (MQTT.js, QoS 1) → Mosquitto → subscriber (its own process) → INSERT on the primary
//
// The two subscribers are described in e2e-subscriber.ts: ours is the
// README's quick start (LoadBalancingModule, a shared route behind
// healthGate('primary'), a @Write() repository method inserting through
// Kysely); the hand-written one is MQTT.js with customHandleAcks and a pg.Pool
// of the same size. Both acknowledge a message only after its INSERT.
//
// A round starts one subscriber in a fresh process, lets it handle a warm-up
// batch, empties the table, and has 20 devices publish the readings at QoS 1
// as fast as the broker acknowledges them. Messages per second run from the
// first publish to the last committed insert; latency is each row's
// clock_timestamp() (the insert) less the device's Date.now() when it
// published (one machine, one wall clock; the device's stamp is truncated to
// the millisecond), so under this burst it is mostly the wait in the queue.
// Each subscriber also reports its process's CPU time per message, which
// other work on the machine moves less than msg/s. The subscribers take
// turns, round after round, and the medians are reported. A round whose rows differ from the readings
// published fails the run (exit 1).
//
// The default of 5000 readings a round is under what Mosquitto's default
// limits let a subscriber fall behind without dropping: ours asks the broker
// for 4096 messages in flight, and Mosquitto queues 1000 more per session
// (`max_queued_messages`) before it drops; the hand-written connections ask
// for nothing, so get Mosquitto's `max_inflight_messages` (20) each, plus
// 1000 queued. With E2E_BENCH_MESSAGES above about 5100, ours loses
// readings there when it falls behind (and the run fails).
//
// E2E_BENCH_MESSAGES, E2E_BENCH_ROUNDS, E2E_BENCH_REPLICAS (0 or 1) change the
// run; E2E_BENCH_ONLY=ours (or hand-written) runs one subscriber;
// E2E_BENCH_CPU_PROF=<dir> writes a CPU profile of each subscriber process;
// ROUTEMQ_* variables are passed on to ours (ROUTEMQ_DATABASE_CONSISTENCY=off).
// Progress goes to stderr; stdout holds the tables and, as its last line, one
// JSON object.
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { printTable } from '../support/print-table.js'
import type { Reading, SubscriberCommand, SubscriberConfig, SubscriberName, SubscriberReport } from './e2e-subscriber.js'

const MESSAGES = Number(process.env.E2E_BENCH_MESSAGES ?? 5000)
const ROUNDS = Number(process.env.E2E_BENCH_ROUNDS ?? 7)
const REPLICAS = Number(process.env.E2E_BENCH_REPLICAS ?? 1)
const CPU_PROFILE_DIR = process.env.E2E_BENCH_CPU_PROF
const DEVICES = 20
/** Publishes each device keeps unacknowledged. */
const WINDOW = 25
const WARMUP_MESSAGES = 1000
const POOL_SIZE = 10
/** A batch gives up when no reading is stored for this long (one was lost, or the subscriber hangs). */
const STALL_MS = 15_000
const START_TIMEOUT_MS = 60_000
const TARGET_RATIO = 0.8
const SUBSCRIBERS: readonly SubscriberName[] = (['ours', 'hand-written'] as const).filter((name) => (process.env.E2E_BENCH_ONLY ?? name) === name)

interface RoundResult {
  readonly subscriber: SubscriberName
  readonly round: number
  /** NaN when not every reading was stored. */
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly publishPerSecond: number
  /** CPU time of the subscriber's process per reading (user and system): less sensitive to other load than msg/s. */
  readonly cpuMicrosPerMessage: number
  readonly rows: number
  readonly distinctIds: number
}

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

/** A subscriber process, with its reports as promises. */
class SubscriberProcess {
  readonly name: SubscriberName
  readonly #child: ChildProcess
  readonly #exited: Promise<unknown>
  #lastProgress = performance.now()
  #stored = 0
  #cpuMicros = Number.NaN
  #waiting: { type: SubscriberReport['type']; resolve: () => void; reject: (error: Error) => void } | undefined

  constructor(config: SubscriberConfig) {
    this.name = config.name
    const script = fileURLToPath(new URL('./e2e-subscriber.js', import.meta.url))
    const execArgv = CPU_PROFILE_DIR === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', CPU_PROFILE_DIR, '--cpu-prof-name', `${config.name}-${config.topicPrefix.replaceAll('/', '-')}.cpuprofile`]
    // Its stdout goes to our stderr: stdout is the bench's result.
    this.#child = fork(script, [JSON.stringify(config)], { execArgv, stdio: ['ignore', 2, 2, 'ipc'] })
    this.#exited = once(this.#child, 'exit')
    this.#child.on('message', (report: SubscriberReport) => {
      if (report.type === 'progress' && report.stored !== this.#stored) {
        this.#stored = report.stored
        this.#lastProgress = performance.now()
      }
      if (report.type === 'done') this.#cpuMicros = report.cpuMicros
      if (this.#waiting?.type === report.type) {
        const { resolve } = this.#waiting
        this.#waiting = undefined
        resolve()
      }
    })
    this.#child.on('exit', (code, signal) => {
      const waiting = this.#waiting
      this.#waiting = undefined
      waiting?.reject(new Error(`the ${this.name} subscriber exited (${signal ?? `code ${code}`}) before '${waiting.type}'`))
    })
  }

  /** Resolves at the next report of `type`; rejects if the process exits first. */
  next(type: SubscriberReport['type']): Promise<void> {
    return new Promise((resolve, reject) => (this.#waiting = { type, resolve, reject }))
  }

  send(command: SubscriberCommand): void {
    this.#child.send(command)
  }

  /** Waits for `count` readings stored; false if none was stored for STALL_MS. */
  async expect(count: number, publish: () => Promise<void>): Promise<{ stored: boolean; publishMs: number; cpuMicros: number }> {
    this.send({ type: 'expect', count })
    this.#cpuMicros = Number.NaN
    this.#stored = 0
    const done = this.next('done').then(() => true)
    this.#lastProgress = performance.now()
    let timer: NodeJS.Timeout | undefined
    const stalled = new Promise<false>((resolve) => {
      timer = setInterval(() => { if (performance.now() - this.#lastProgress > STALL_MS) resolve(false) }, 500)
    })
    const started = performance.now()
    await publish()
    const publishMs = performance.now() - started
    const stored = await Promise.race([done, stalled]).finally(() => clearInterval(timer))
    return { stored, publishMs, cpuMicros: this.#cpuMicros }
  }

  get lastStored(): number {
    return this.#stored
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 20_000)
    if (this.#child.connected) this.send({ type: 'stop' })
    else this.#child.kill('SIGTERM')
    await this.#exited
    clearTimeout(timer)
  }
}

/** Device `device` publishes readings `firstId + device + k * DEVICES` below `firstId + count`, WINDOW at a time. */
async function publishShare(client: MqttClient, device: number, topicPrefix: string, firstId: number, count: number): Promise<void> {
  const topic = `${topicPrefix}/devices/device-${device}/telemetry`
  let k = 0
  const sender = async (): Promise<void> => {
    for (let offset = device + DEVICES * k++; offset < count; offset = device + DEVICES * k++) {
      const reading: Reading = { id: firstId + offset, celsius: 20 + (offset % 100) / 10, sentAt: Date.now() }
      await client.publishAsync(topic, JSON.stringify(reading), { qos: 1 })
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, sender))
}

/** Nearest-rank median; NaN when there is none, or a value is NaN (a round that did not store everything). */
function median(values: readonly number[]): number {
  if (values.length === 0 || values.some(Number.isNaN)) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.ceil(sorted.length / 2) - 1]!
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}

function ms(value: number): string {
  return Number.isNaN(value) ? '-' : `${round(value, 1)} ms`
}

function us(value: number): string {
  return Number.isNaN(value) ? '-' : `${Math.round(value)} µs`
}

function rate(value: number): string {
  return Number.isNaN(value) ? '-' : String(Math.round(value))
}

let topology: Topology | undefined
let admin: pg.Pool | undefined
let clients: MqttClient[] = []
let running: SubscriberProcess | undefined
let nextId = 1

async function runRound(name: SubscriberName, roundNumber: number): Promise<RoundResult> {
  // A topic prefix per round: the session ours keeps between runs (clean: false) stays subscribed to the last one's.
  const topicPrefix = `e2e/${roundNumber}-${name}`
  const subscriber = (running = new SubscriberProcess({
    name, topicPrefix, poolSize: POOL_SIZE,
    brokerUrl: topology!.brokers[0]!.url, primaryUrl: topology!.primary!.url, replicaUrls: topology!.replicas.map((r) => r.url),
  }))
  const publish = (count: number) => () => {
    const firstId = nextId
    nextId += count
    return Promise.all(clients.map((client, device) => publishShare(client, device, topicPrefix, firstId, count))).then(() => undefined)
  }
  await Promise.race([subscriber.next('ready'), new Promise((_, reject) => setTimeout(() => reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS).unref())])
  const warm = await subscriber.expect(WARMUP_MESSAGES, publish(WARMUP_MESSAGES))
  if (!warm.stored) throw new Error(`${name} stored ${subscriber.lastStored} of ${WARMUP_MESSAGES} warm-up readings`)
  await admin!.query('truncate e2e_readings')
  const started = performance.now()
  const batch = await subscriber.expect(MESSAGES, publish(MESSAGES))
  const elapsedMs = performance.now() - started
  await subscriber.stop()
  running = undefined
  const { rows } = await admin!.query<{ rows: string; distinct_ids: string; p50: number | null; p99: number | null }>(`
    select count(*) as rows, count(distinct id) as distinct_ids,
      percentile_disc(0.5) within group (order by latency) as p50,
      percentile_disc(0.99) within group (order by latency) as p99
    from (select id, extract(epoch from stored_at) * 1000 - sent_at as latency from e2e_readings) as r`)
  const row = rows[0]!
  const result: RoundResult = {
    subscriber: name,
    round: roundNumber,
    perSecond: batch.stored ? MESSAGES / (elapsedMs / 1000) : Number.NaN,
    p50Ms: Number(row.p50),
    p99Ms: Number(row.p99),
    publishPerSecond: MESSAGES / (batch.publishMs / 1000),
    cpuMicrosPerMessage: batch.cpuMicros / MESSAGES,
    rows: Number(row.rows),
    distinctIds: Number(row.distinct_ids),
  }
  log(`  ${name}: ${rate(result.perSecond)} msg/s, p50 ${ms(result.p50Ms)}, p99 ${ms(result.p99Ms)}, ` +
    `CPU ${us(result.cpuMicrosPerMessage)}/msg, ${result.distinctIds} of ${MESSAGES} stored (${result.rows} rows); devices published at ${rate(result.publishPerSecond)} msg/s`)
  return result
}

try {
  log(`starting Mosquitto and PostgreSQL (a primary${REPLICAS > 0 ? ` and ${REPLICAS} replica${REPLICAS > 1 ? 's' : ''}` : ''})`)
  topology = await startTopology({ brokers: 1, postgres: true, replicas: REPLICAS })
  admin = new pg.Pool({ connectionString: topology.primary!.url, max: 1 })
  // The topology's stop at the end may cut an idle connection: no news.
  admin.on('error', () => undefined)
  await admin.query(`create table e2e_readings (id bigint not null, device text not null, celsius double precision not null,
    sent_at double precision not null, stored_at timestamptz not null default clock_timestamp())`)
  clients = await Promise.all(Array.from({ length: DEVICES }, (_, n) => connectAsync(topology!.brokers[0]!.url, { clientId: `e2e-device-${n}`, reconnectPeriod: 0 })))

  const results: RoundResult[] = []
  let roundNumber = 0
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate which goes first, so that neither always follows the other.
    const order = r % 2 === 0 ? SUBSCRIBERS : [...SUBSCRIBERS].reverse()
    for (const name of order) {
      log(`round ${r + 1} of ${ROUNDS}, ${name}: ${WARMUP_MESSAGES} warm-up readings, then ${MESSAGES} from ${DEVICES} devices`)
      results.push(await runRound(name, ++roundNumber))
    }
  }

  const summary = (name: SubscriberName) => {
    const mine = results.filter((r) => r.subscriber === name)
    return {
      perSecond: median(mine.map((r) => r.perSecond)), p50Ms: median(mine.map((r) => r.p50Ms)), p99Ms: median(mine.map((r) => r.p99Ms)),
      cpuMicros: median(mine.map((r) => r.cpuMicrosPerMessage)),
    }
  }
  const o = summary('ours')
  const h = summary('hand-written')
  const ratio = o.perSecond / h.perSecond
  // The same comparison by the subscribers' own CPU time, which other load on the machine moves less.
  const cpuRatio = h.cpuMicros / o.cpuMicros
  const database = `PostgreSQL primary${REPLICAS > 0 ? ` + ${REPLICAS} streaming replica` : ''}`
  printTable(`End to end, each round: ${MESSAGES} QoS 1 readings from ${DEVICES} devices, one Mosquitto (defaults), ${database}`, [
    ['round', 'subscriber', 'msg/s', 'p50', 'p99', 'CPU/msg', 'stored (distinct ids)', 'rows', 'devices published at'],
    ...results.map((r) => [String(r.round), r.subscriber, rate(r.perSecond), ms(r.p50Ms), ms(r.p99Ms), us(r.cpuMicrosPerMessage), `${r.distinctIds} of ${MESSAGES}`, String(r.rows), `${rate(r.publishPerSecond)} msg/s`]),
  ])
  printTable(`Medians of ${ROUNDS} rounds each, publish to committed insert (target: ours ≥ ${TARGET_RATIO}× hand-written)`, [
    ['subscriber', 'msg/s', 'p50', 'p99', 'CPU/msg', 'msg/s vs hand-written', 'msg per CPU-second vs hand-written'],
    ['ours: LoadBalancingModule, shared route, healthGate, @Write via Kysely', rate(o.perSecond), ms(o.p50Ms), ms(o.p99Ms), us(o.cpuMicros),
      Number.isNaN(ratio) ? '-' : `${round(ratio, 2)}× (${ratio >= TARGET_RATIO ? 'meets' : 'under'} the target)`, Number.isNaN(cpuRatio) ? '-' : `${round(cpuRatio, 2)}×`],
    [`hand-written: MQTT.js customHandleAcks × ${POOL_SIZE} connections, pg.Pool of ${POOL_SIZE}`, rate(h.perSecond), ms(h.p50Ms), ms(h.p99Ms), us(h.cpuMicros), '1.00×', '1.00×'],
  ])
  const lost = results.filter((r) => r.distinctIds !== MESSAGES || r.rows !== MESSAGES)
  for (const r of lost) log(`NOT ALL STORED: ${r.subscriber}, round ${r.round}: ${r.distinctIds} distinct readings of ${MESSAGES} (${r.rows} rows)`)
  if (lost.length > 0) process.exitCode = 1
  const json = (value: number, decimals: number): number | null => (Number.isNaN(value) ? null : round(value, decimals))
  console.log(JSON.stringify({
    messages: MESSAGES, devices: DEVICES, rounds: ROUNDS, replicas: REPLICAS,
    oursPerSecond: json(o.perSecond, 0), handWrittenPerSecond: json(h.perSecond, 0), ratio: json(ratio, 3), targetRatio: TARGET_RATIO,
    oursP50Ms: json(o.p50Ms, 1), oursP99Ms: json(o.p99Ms, 1), handWrittenP50Ms: json(h.p50Ms, 1), handWrittenP99Ms: json(h.p99Ms, 1),
    oursCpuMicrosPerMessage: json(o.cpuMicros, 0), handWrittenCpuMicrosPerMessage: json(h.cpuMicros, 0), cpuRatio: json(cpuRatio, 3),
    roundsNotAllStored: lost.length,
  }))
} catch (error) {
  process.exitCode = 1
  log(`bench failed: ${error instanceof Error ? error.stack : String(error)}`)
  console.log(JSON.stringify({ messages: MESSAGES, error: error instanceof Error ? error.message : String(error) }))
} finally {
  await running?.stop().catch((error: unknown) => log(`stopping the ${running!.name} subscriber failed: ${String(error)}`))
  await Promise.all(clients.map((client) => client.endAsync().catch(() => undefined)))
  await admin?.end().catch(() => undefined)
  await topology?.stop()
}
