import assert from 'node:assert/strict'
import { SpanKind } from '@opentelemetry/api'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import { sql, type Kysely } from 'kysely'
import { connectAsync, type IPublishPacket } from 'mqtt'
import pg from 'pg'
import {
  Application, BrokerPool, InjectKysely, LoadBalancingModule, ReadOnly, ReplicaPool, Repository, Router, Write, silentLogger,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { parentOf, spans, traceparent } from '../support/in-memory-tracing.js'

interface Database {
  traced_readings: { device: string; celsius: number }
}

/** A value passed as a query parameter only: it must appear in no span. */
const PARAMETER = 'parameter-7f3a'

@Repository()
class TracedReadings {
  constructor(@InjectKysely() private readonly db: Kysely<Database>) {}

  @ReadOnly()
  async count(device: string): Promise<number> {
    const row = await this.db.selectFrom('traced_readings').select(sql<string>`count(*)`.as('n')).where('device', '=', device).executeTakeFirstOrThrow()
    return Number(row.n)
  }

  @Write()
  async save(device: string, celsius: number): Promise<void> {
    await this.db.insertInto('traced_readings').values({ device, celsius }).execute()
  }
}

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const DEVICE_SPAN = 'b7ad6b7169203331'

describe('Tracing on real Mosquitto and PostgreSQL (SDK in-memory exporter)', function () {
  this.timeout(90_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    spans.start()
    topology = await startTopology({ brokers: 1, replicas: 1 })
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('create table traced_readings (device text not null, celsius real not null)')
    await admin.end()
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(async () => {
    spans.stop()
    await topology?.stop()
  })

  it("continues a device's trace through the handler, its queries on the replica and the primary, and its reply", async () => {
    const router = new Router().on('devices/{id}/telemetry', async (ctx) => {
      const readings = ctx.container.resolve(TracedReadings)
      const before = await readings.count(PARAMETER)
      await readings.save(PARAMETER, (ctx.payload as { celsius: number }).celsius)
      await ctx.publish(`devices/${ctx.params.id}/saved`, { before }, { qos: 1 })
    }, { qos: 1 })
    const module = LoadBalancingModule.forRoot({
      mqtt: { brokers: [topology.brokers[0]!.url], clientId: 'tracing-app' },
      database: { primary: topology.primary!.url, replicas: [topology.replicas[0]!.url] },
      health: false,
      metrics: false,
    })
    const app = Application.create({ router, modules: [module], logger: silentLogger })
    cleanup.push(() => app.stop())
    await app.start()
    spans.reset()

    const device = await connectAsync(topology.brokers[0]!.url, { clientId: 'traced-device', protocolVersion: 5 })
    cleanup.push(() => device.endAsync())
    const reply = new Promise<IPublishPacket>((resolve) => device.on('message', (_topic, _payload, packet) => resolve(packet)))
    await device.subscribeAsync('devices/7/saved', { qos: 1 })
    await device.publishAsync('devices/7/telemetry', JSON.stringify({ celsius: 21.5 }), {
      qos: 1, properties: { userProperties: { traceparent: traceparent(TRACE_ID, DEVICE_SPAN) } },
    })
    const packet = await reply
    const consumer = await spans.waitFor((s) => s.kind === SpanKind.CONSUMER)
    const all = spans.finished()
    const handler = all.find((s) => s.name === 'handler')!
    const producer = all.find((s) => s.kind === SpanKind.PRODUCER)!
    const queries = all.filter((s) => s.kind === SpanKind.CLIENT)

    assert.equal(consumer.name, 'process devices/{id}/telemetry')
    assert.equal(consumer.spanContext().traceId, TRACE_ID)
    assert.equal(consumer.parentSpanContext?.spanId, DEVICE_SPAN, "the device's span is the parent")
    assert.equal(parentOf(handler, all), consumer)

    const select = queries.find((s) => s.name === 'SELECT')
    const insert = queries.find((s) => s.name === 'INSERT')
    assert.ok(select && insert, `a SELECT and an INSERT span; got ${queries.map((s) => s.name).join(', ')}`)
    assert.equal(parentOf(select, all), handler, 'the read is a child of the handler')
    assert.equal(parentOf(insert, all), handler, 'the write is a child of the handler')
    assert.deepEqual(pick(select, ['db.system.name', 'db.operation.name', 'db.namespace', 'server.address', 'server.port', 'routemq.db.role']), {
      'db.system.name': 'postgresql', 'db.operation.name': 'SELECT', 'db.namespace': 'postgres',
      'server.address': '127.0.0.1', 'server.port': topology.replicas[0]!.port, 'routemq.db.role': 'replica',
    }, '@ReadOnly went to the replica')
    assert.deepEqual(pick(insert, ['server.port', 'routemq.db.role']), { 'server.port': topology.primary!.port, 'routemq.db.role': 'primary' }, '@Write went to the primary')
    for (const span of all) assert.ok(!JSON.stringify(span.attributes).includes(PARAMETER), `no query parameter in ${span.name}`)

    assert.equal(parentOf(producer, all), handler)
    const sent = packet.properties?.userProperties?.traceparent
    assert.equal(sent, traceparent(TRACE_ID, producer.spanContext().spanId), 'the reply carries the trace on, with the PRODUCER span as parent')
    assert.ok(queries.every((s) => s.spanContext().traceId === TRACE_ID), 'every query belongs to the trace')
  })

  it('carries the trace through the kernel alone, on its default single-broker transport', async () => {
    const router = new Router().on('kernel/{id}/ping', (ctx) => ctx.publish(`kernel/${ctx.params.id}/pong`, 'pong', { qos: 1 }), { qos: 1 })
    const app = Application.create({ router, mqtt: { url: topology.brokers[0]!.url, clientId: 'tracing-kernel' }, logger: silentLogger })
    cleanup.push(() => app.stop())
    await app.start()
    const device = await connectAsync(topology.brokers[0]!.url, { clientId: 'traced-kernel-device', protocolVersion: 5 })
    cleanup.push(() => device.endAsync())
    const reply = new Promise<IPublishPacket>((resolve) => device.on('message', (_topic, _payload, packet) => resolve(packet)))
    await device.subscribeAsync('kernel/3/pong', { qos: 1 })
    spans.reset()
    await device.publishAsync('kernel/3/ping', 'ping', { qos: 1, properties: { userProperties: { traceparent: traceparent(TRACE_ID, DEVICE_SPAN) } } })
    const packet = await reply
    const consumer = await spans.waitFor((s) => s.kind === SpanKind.CONSUMER)
    const producer = spans.finished().find((s) => s.kind === SpanKind.PRODUCER)!
    assert.equal(consumer.parentSpanContext?.spanId, DEVICE_SPAN)
    assert.equal(packet.properties?.userProperties?.traceparent, traceparent(TRACE_ID, producer.spanContext().spanId))
  })

  it('draws a broker failover span when the active broker dies', async () => {
    const extra = await startTopology({ brokers: 2 })
    cleanup.push(() => extra.stop())
    const pool = new BrokerPool({ brokers: extra.brokers.map((b) => b.url), mode: 'failover', topologyCheck: false, strategy: 'priority', logger: silentLogger })
    cleanup.push(() => pool.close())
    await pool.connect(() => undefined)
    spans.reset()
    await extra.brokers[0]!.kill()
    const failover = await spans.waitFor((s) => s.name === 'mqtt broker failover')
    assert.equal(failover.attributes['routemq.failover.from'], `127.0.0.1:${extra.brokers[0]!.port}`)
    assert.equal(failover.attributes['routemq.failover.to'], `127.0.0.1:${extra.brokers[1]!.port}`)
    assert.equal(failover.parentSpanContext, undefined, 'a trace of its own')
    assert.ok(Number(failover.attributes['routemq.failover.gap_ms']) >= 0)
  })

  it('draws a primary failover span when a replica is promoted after the primary stopped', async () => {
    const [oldPrimary, promoted] = [topology.primary!, topology.replicas[0]!]
    const pool = await ReplicaPool.create({
      primary: [oldPrimary.url, promoted.url], replicas: [promoted.url], health: { probeIntervalMs: 200 }, connectTimeoutMs: 1000,
    })
    cleanup.push(() => pool.close())
    spans.reset()
    await oldPrimary.stop()
    await promoted.promote()
    const failover = await spans.waitFor((s) => s.name === 'postgresql primary failover')
    assert.equal(failover.attributes['routemq.failover.from'], `127.0.0.1:${oldPrimary.port}/postgres`)
    assert.equal(failover.attributes['routemq.failover.to'], `127.0.0.1:${promoted.port}/postgres`)
    assert.ok(Number(failover.attributes['routemq.outage_ms']) > 0, 'it lasted from the first missed probe')
    assert.equal(spans.finished().filter((s) => s.name.startsWith('postgresql primary')).length, 1)
    assert.deepEqual(spans.finished().filter((s) => s.kind === SpanKind.CLIENT), [], 'the probes (every 200 ms) are not traced')
  })
})

function pick(span: ReadableSpan, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((key) => [key, span.attributes[key]]))
}
