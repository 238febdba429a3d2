import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql, type Kysely } from 'kysely'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import {
  Application, InjectKysely, LoadBalancingModule, Repository, Router, Write, healthGate, silentLogger, type HealthGate,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { pollUntil } from '../support/poll-until.js'
import { parsePrometheusText } from '../support/prometheus-text.js'

interface Database {
  spool_readings: { device: string; seq: number; copies: number }
}

@Repository()
class SpoolReadings {
  constructor(@InjectKysely() private readonly db: Kysely<Database>) {}

  @Write()
  async save(device: string, seq: number): Promise<void> {
    await this.db.insertInto('spool_readings').values({ device, seq, copies: 1 })
      .onConflict((c) => c.columns(['device', 'seq']).doUpdateSet({ copies: sql`spool_readings.copies + 1` })).execute()
  }
}

const DEVICES = 20

/**
 * A gate with a spool, on a Mosquitto with its default limits (at most 1000
 * messages queued per session): the readings of a primary outage go to the
 * spool, acknowledged once on disk, and are stored in order per device once
 * the primary is back.
 */
describe('healthGate spool on a default Mosquitto and a real PostgreSQL', function () {
  this.timeout(120_000)
  let topology: Topology
  let dir: string
  let admin: pg.Pool
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ brokers: 1, postgres: true })
    admin = new pg.Pool({ connectionString: topology.primary!.url, max: 1 })
    // The primary is stopped on purpose: an idle connection it cuts is no news.
    admin.on('error', () => undefined)
    await admin.query(`create table spool_readings (device text not null, seq integer not null, copies integer not null,
      stored_at timestamptz not null default clock_timestamp(), primary key (device, seq))`)
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-test-'))
    await admin.query('truncate spool_readings')
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  after(async () => {
    await admin?.end()
    await topology?.stop()
  })

  function app(gate: HealthGate, clientId: string, http = false): { app: Application; module: LoadBalancingModule } {
    const router = new Router()
    router.on('devices/{id}/telemetry', async (ctx) => {
      await ctx.container.resolve(SpoolReadings).save(ctx.params.id, (ctx.payload as { seq: number }).seq)
    }, { qos: 1, shared: true, middleware: [gate] })
    const module = LoadBalancingModule.forRoot({
      mqtt: { brokers: [topology.brokers[0]!.url], clientId },
      database: { primary: topology.primary!.url },
      health: { http: http ? { port: 0 } : false },
    })
    const created = Application.create({ router, modules: [module], logger: silentLogger })
    cleanup.push(() => created.stop())
    return { app: created, module }
  }

  /** A device fleet of one connection: `rate` readings/s over DEVICES topics; counts what the broker acknowledged. */
  async function publisher(rate: number, firstSeq = 0): Promise<{ client: MqttClient; acknowledged: Map<string, number[]>; stop: () => Promise<void> }> {
    const client = await connectAsync(topology.brokers[0]!.url, { clientId: `spool-devices-${Date.now()}` })
    const acknowledged = new Map<string, number[]>()
    const seqs = new Array<number>(DEVICES).fill(firstSeq)
    const sent: Promise<unknown>[] = []
    let turn = 0
    const ticker = setInterval(() => {
      for (let i = 0; i < rate / 20; i++) {
        const device = `d${turn++ % DEVICES}`
        const seq = ++seqs[Number(device.slice(1))]!
        sent.push(client.publishAsync(`devices/${device}/telemetry`, JSON.stringify({ seq }), { qos: 1 }).then(() => {
          let list = acknowledged.get(device)
          if (!list) acknowledged.set(device, (list = []))
          list.push(seq)
        }, () => undefined))
      }
    }, 50)
    const stop = async (): Promise<void> => {
      clearInterval(ticker)
      await Promise.all(sent)
      await client.endAsync()
    }
    cleanup.push(stop)
    return { client, acknowledged, stop }
  }

  /** Waits until every acknowledged reading is stored; then checks that each device's were stored in order. */
  async function expectStoredInOrder(acknowledged: Map<string, number[]>): Promise<number> {
    const total = [...acknowledged.values()].reduce((n, list) => n + list.length, 0)
    for (let i = 0; ; i++) {
      const { rows } = await admin.query<{ n: string }>('select count(*) as n from spool_readings')
      if (Number(rows[0]!.n) >= total) break
      assert.ok(i < 600, `only ${rows[0]!.n} of ${total} acknowledged readings stored after 60 s`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const { rows } = await admin.query<{ device: string; seq: number }>('select device, seq from spool_readings order by stored_at, device, seq')
    const stored = new Map<string, number[]>()
    for (const row of rows) {
      let list = stored.get(row.device)
      if (!list) stored.set(row.device, (list = []))
      list.push(row.seq)
    }
    for (const [device, seqs] of acknowledged) {
      const have = new Set(stored.get(device))
      const missing = seqs.filter((seq) => !have.has(seq))
      assert.deepEqual(missing.slice(0, 10), [], `${device}: ${missing.length} acknowledged readings not stored`)
      const order = stored.get(device)!
      const inversions = order.filter((seq, i) => i > 0 && seq < order[i - 1]!)
      assert.deepEqual(inversions.slice(0, 10), [], `${device}: stored out of order`)
    }
    return total
  }

  it('keeps a 12 s primary outage at 200 msg/s (2400 readings, past the broker queue of 1000) in the spool and stores every reading in order', async () => {
    const gate = healthGate('primary', { spool: { path: join(dir, 'spool') } })
    const { app: application, module } = app(gate, 'spool-app')
    await application.start()
    const monitor = module.parts.health!.monitor
    const devices = await publisher(200)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const down = new Promise<void>((resolve) => monitor.onDown((c) => c.name === 'primary' && resolve()))
    await topology.primary!.stop()
    await down
    await new Promise((resolve) => setTimeout(resolve, 12_000))
    const during = gate.stats.spool!
    assert.ok(during.messages > 1500, `${during.messages} messages in the spool during the outage`)
    assert.equal(during.spooledTotal, during.messages + during.replayedTotal)
    await topology.primary!.restart()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await devices.stop()
    const total = await expectStoredInOrder(devices.acknowledged)
    assert.ok(total > 2600, `${total} readings acknowledged`)
    const after = gate.stats.spool!
    assert.equal(after.messages, 0, 'the spool emptied')
    assert.equal(after.replayedTotal, after.spooledTotal)
    assert.equal(gate.stats.rejected['max-hold-ms'] + gate.stats.rejected['max-held'], 0)
    const drops = module.parts.brokers!.stats.brokers.reduce((n, b) => n + b.dropped, 0)
    assert.equal(drops, 0, 'the broker dropped nothing')
  })

  it('replays what a stopped instance left in its spool first on the next start, with new readings behind it', async () => {
    const path = join(dir, 'spool')
    const first = app(healthGate('primary', { spool: { path } }), 'spool-app-1')
    await first.app.start()
    const monitor = first.module.parts.health!.monitor
    const down = new Promise<void>((resolve) => monitor.onDown((c) => c.name === 'primary' && resolve()))
    await topology.primary!.stop()
    await down
    const devices = await publisher(200)
    const firstGate = first.app.router.routes[0]!.middleware[0] as HealthGate
    await until(() => acknowledgedCount(devices.acknowledged) >= 600)
    // The devices pause (a reading in flight at the stop would come back later through the broker, out of order),
    // everything acknowledged reaches the spool, and the instance stops (a rollout).
    await devices.stop()
    await until(() => firstGate.stats.spool!.spooledTotal >= acknowledgedCount(devices.acknowledged))
    await first.app.stop()
    const left = firstGate.stats.spool!
    assert.equal(left.messages, 0, 'a closed spool reports nothing')
    assert.ok(left.spooledTotal >= 600)

    const secondGate = healthGate('primary', { spool: { path } })
    const second = app(secondGate, 'spool-app-2')
    await second.app.start()
    assert.ok(secondGate.stats.spool!.messages >= left.spooledTotal, `${secondGate.stats.spool!.messages} found in the spool at start, ${left.spooledTotal} left`)
    const atStart = secondGate.stats.spool!.messages
    // The same devices go on: their new readings must not overtake the spooled ones.
    const more = await publisher(200, 1000)
    await until(() => secondGate.stats.spool!.spooledTotal >= 200)
    await topology.primary!.restart()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await more.stop()
    const all = new Map([...devices.acknowledged].map(([device, seqs]) => [device, [...seqs, ...(more.acknowledged.get(device) ?? [])]]))
    const total = await expectStoredInOrder(all)
    const stats = secondGate.stats.spool!
    assert.equal(stats.messages, 0)
    assert.equal(stats.replayedTotal, atStart + stats.spooledTotal, 'the second instance replayed what it found and what it spooled itself')
    assert.ok(total >= atStart + 200)
  })

  it('stops taking messages when the spool is full, says so on /ready and /metrics, and loses none once the primary is back', async () => {
    const gate = healthGate('primary', { spool: { path: join(dir, 'spool'), maxBytes: 48 * 1024 } })
    const { app: application, module } = app(gate, 'spool-app-full', true)
    await application.start()
    const health = module.parts.health!
    const down = new Promise<void>((resolve) => health.monitor.onDown((c) => c.name === 'primary' && resolve()))
    await topology.primary!.stop()
    await down
    const devices = await publisher(200)
    // One message per device waits at the gate; the dispatcher keeps the device's others behind it, all unacknowledged.
    await until(() => gate.stats.spool!.waitingForRoom >= DEVICES / 2)
    const full = gate.stats.spool!
    assert.ok(full.bytes <= full.maxBytes, `${full.bytes} bytes spooled, over maxBytes ${full.maxBytes}`)
    const spoolCheck = await until(async () => {
      const ready = await (await fetch(`${health.server!.url}/ready`)).json() as { status: string; checks: Record<string, { status: string; output?: string }[]> }
      const check = ready.checks['spool:primary']?.[0]
      return check?.status === 'warn' && /full/.test(check.output ?? '') ? ready : undefined
    })
    assert.equal(spoolCheck.status, 'fail', 'the primary is down: not ready, and the spool check says why it matters')
    assert.match(spoolCheck.checks['spool:primary']![0]!.output!, /the spool is full: \d+ messages wait unacknowledged at the broker/)
    const metrics = parsePrometheusText(await (await fetch(`${health.server!.url}/metrics`)).text())
    const sample = (name: string): number => metrics.get(name)!.samples.find((x) => x.labels.gate === 'primary')!.value
    assert.equal(sample('routemq_spool_max_bytes'), 48 * 1024)
    assert.ok(sample('routemq_spool_messages') > 500)
    assert.ok(sample('routemq_spool_waiting_for_room') > 0)
    assert.ok(sample('routemq_spool_full_waits_total') > 0)
    assert.ok(sample('routemq_spool_oldest_age_seconds') > 1)
    await topology.primary!.restart()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await devices.stop()
    await expectStoredInOrder(devices.acknowledged)
    assert.equal(gate.stats.spool!.messages, 0)
    assert.equal(gate.stats.spool!.waitingForRoom, 0)
    assert.equal(module.parts.brokers!.stats.brokers.reduce((n, b) => n + b.dropped, 0), 0, 'the app took what waited: the broker dropped nothing')
    await until(async () => {
      const ready = await (await fetch(`${health.server!.url}/ready`)).json() as { checks: Record<string, { status: string }[]> }
      return ready.checks['spool:primary']?.[0]?.status === 'pass' || undefined
    })
  })
})

function acknowledgedCount(acknowledged: Map<string, number[]>): number {
  return [...acknowledged.values()].reduce((n, list) => n + list.length, 0)
}

/** Polls `probe` every 50 ms until it returns something truthy (or true); fails after 30 s. */
function until<T>(probe: () => T | Promise<T>): Promise<Exclude<T, undefined | false>> {
  return pollUntil(probe, { timeoutMs: 30_000, everyMs: 50 })
}
