// npm run bench:spool: how fast a health gate's spool takes and gives back
// messages, beside the unspooled path, in one run on a real Mosquitto and a
// real PostgreSQL. One app with a route behind healthGate('db', { spool })
// whose handler inserts a row; a device publishes N QoS 1 messages over 50
// topics as fast as the broker acknowledges them (500 in flight):
//   1. direct:  'db' healthy, the handler runs (the unspooled path);
//   2. spool:   'db' down, each message is written to the spool and acknowledged;
//   3. replay:  'db' healthy again, the spooled messages run through the route.
// Also the bare store: MessageSpool.append with 64 writers. Progress goes to
// stderr; stdout holds the table and, as its last line, one JSON object.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import { Application, BrokerPool, HealthModule, Router, healthGate, silentLogger, type HealthGate } from '../../src/index.js'
import { MessageSpool } from '../../src/health/spool/message-spool.js'
import { startTopology } from '../../src/testing/index.js'
import { printTable } from '../support/print-table.js'

const N = Number(process.env.SPOOL_BENCH_MESSAGES ?? 20_000)
const TOPICS = 50
const WINDOW = 500

const topology = await startTopology({ brokers: 1, postgres: true, brokerConfig: 'max_queued_messages 0' })
const dir = await mkdtemp(join(tmpdir(), 'spool-bench-'))
const db = new pg.Pool({ connectionString: topology.primary!.url, max: 16 })
// The topology's stop at the end may cut an idle connection: no news.
db.on('error', () => undefined)
let down = false
let handled = 0
let onHandled = (): void => undefined
try {
  await db.query('create table bench_rows (topic text not null, n integer not null)')
  const gate: HealthGate = healthGate('db', { spool: { path: join(dir, 'spool') } })
  const router = new Router().on('bench/{topic}', async (ctx) => {
    await db.query('insert into bench_rows (topic, n) values ($1, $2)', [ctx.params.topic, Number(ctx.raw.toString())])
    handled++
    onHandled()
  }, { qos: 1, middleware: [gate] })
  const dependency = { healthChecks: () => [{ name: 'db', intervalMs: 50, rise: 1, fall: 1, check: () => { if (down) throw new Error('down for the benchmark') } }] }
  const health = new HealthModule({ sources: [dependency], http: false, shutdown: false })
  const transport = new BrokerPool({ brokers: [topology.brokers[0]!.url], logger: silentLogger })
  const app = Application.create({ router, transport, modules: [health], logger: silentLogger })
  await app.start()
  const device = await connectAsync(topology.brokers[0]!.url, { clientId: 'spool-bench-device' })

  const until = (done: () => boolean): Promise<void> => new Promise((resolve) => {
    const poll = (): void => { if (done()) resolve(); else setTimeout(poll, 5) }
    poll()
  })
  const setDown = async (value: boolean): Promise<void> => {
    down = value
    await until(() => health.monitor.isHealthy(['db']) === !value)
  }

  // 1. direct
  process.stderr.write(`direct: ${N} messages, db healthy\n`)
  let started = performance.now()
  await publish(device, N, 0)
  await until(() => handled >= N)
  const directMs = performance.now() - started

  // 2. spool
  await setDown(true)
  process.stderr.write(`spool: ${N} messages, db down\n`)
  started = performance.now()
  await publish(device, N, N)
  await until(() => gate.stats.spool!.spooledTotal >= N)
  const spoolMs = performance.now() - started

  // 3. replay
  process.stderr.write('replay: db healthy again\n')
  const handledBefore = handled
  started = performance.now()
  await setDown(false)
  await until(() => handled - handledBefore >= N && gate.stats.spool!.messages === 0)
  const replayMs = performance.now() - started
  onHandled = () => undefined

  await device.endAsync()
  await app.stop()

  // The bare store.
  const store = MessageSpool.open(join(dir, 'bare'))
  const message = { route: 'bench/{topic}', topic: 'bench/t1', payload: Buffer.from('12345'), qos: 1 as const, retain: false, properties: undefined, broker: 'b', spooledAt: Date.now() }
  started = performance.now()
  await Promise.all(Array.from({ length: 64 }, async () => { for (let i = 0; i < N / 64; i++) await store.append(message) }))
  const bareMs = performance.now() - started
  await store.close()

  const rate = (ms: number): number => Math.round(N / (ms / 1000))
  const rows = [
    { path: 'direct (db healthy, handler inserts a row)', ms: directMs },
    { path: 'spool write (db down: on disk, then acknowledged)', ms: spoolMs },
    { path: 'spool replay (db back: through the route, then removed)', ms: replayMs },
    { path: 'bare MessageSpool.append, 64 writers', ms: bareMs },
  ]
  printTable(`Health gate spool: ${N} QoS 1 messages over ${TOPICS} topics each, one Mosquitto, one PostgreSQL`, [
    ['path', 'messages', 'seconds', 'msg/s', 'vs direct'],
    ...rows.map((r) => [r.path, String(N), (r.ms / 1000).toFixed(2), String(rate(r.ms)), `${(directMs / r.ms).toFixed(2)}×`]),
  ])
  const { rows: counted } = await db.query<{ n: string }>('select count(*) as n from bench_rows')
  console.log(JSON.stringify({
    messages: N, rows: Number(counted[0]!.n),
    directPerSecond: rate(directMs), spoolWritePerSecond: rate(spoolMs), replayPerSecond: rate(replayMs), bareAppendPerSecond: rate(bareMs),
    spoolWriteVsDirect: Number((directMs / spoolMs).toFixed(2)), replayVsDirect: Number((directMs / replayMs).toFixed(2)),
  }))
} finally {
  await db.end().catch(() => undefined)
  await topology.stop()
  await rm(dir, { recursive: true, force: true })
}

/** Publishes `count` QoS 1 messages numbered from `from`, keeping WINDOW unacknowledged at most. */
async function publish(client: MqttClient, count: number, from: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = from + next++
      await client.publishAsync(`bench/t${n % TOPICS}`, String(n), { qos: 1 })
    }
  }
  await Promise.all(Array.from({ length: WINDOW }, worker))
}
