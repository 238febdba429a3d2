import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql, type Kysely } from 'kysely'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import {
  Application, BROKER_POOL, DeviceRedirects, GEO_RESOLVER, HEALTH_MONITOR, InjectKysely, KYSELY, LoadBalancingModule, ReadOnly, REPLICA_POOL,
  Repository, Router, Write, brokerPoolHealth, geoRegion, healthGate, silentLogger,
  type BrokerPool, type GeoResolver, type HealthMonitor, type ReplicaPool,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { writeMmdb } from '../support/mmdb-writer.js'
import { parsePrometheusText } from '../support/prometheus-text.js'

interface Database {
  module_readings: { device: string; celsius: number }
}

@Repository()
class Readings {
  constructor(@InjectKysely() private readonly db: Kysely<Database>) {}

  @Write()
  async save(device: string, celsius: number): Promise<void> {
    await this.db.insertInto('module_readings').values({ device, celsius }).execute()
  }

  /** The device's readings and the port of the server that answered. */
  @ReadOnly()
  async of(device: string): Promise<{ count: number; port: number }> {
    const { rows } = await sql<{ count: string; port: number }>`select count(*) as count, inet_server_port() as port from module_readings where device = ${device}`.execute(this.db)
    return { count: Number(rows[0]!.count), port: Number(rows[0]!.port) }
  }
}

describe('LoadBalancingModule.fromEnv on the launcher’s brokers, database and a GeoIP file', function () {
  this.timeout(60_000)
  let topology: Topology
  let dir: string
  let device: MqttClient | undefined
  let app: Application | undefined
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ brokers: 2, replicas: 1 })
    dir = await mkdtemp(join(tmpdir(), 'lb-module-'))
    const client = new pg.Client({ connectionString: topology.primary!.url })
    await client.connect()
    await client.query('create table module_readings (device text not null, celsius real not null)')
    await client.end()
  })
  after(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
    await device?.endAsync()
    await app?.stop()
    await topology?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('builds every configured part, registers it, and serves real messages through all of them', async () => {
    const database = join(dir, 'geo.mmdb')
    await writeFile(database, writeMmdb([{ network: '81.2.69.0/24', data: { continent: { code: 'EU' }, country: { iso_code: 'GB' } } }], { databaseType: 'GeoIP2-City' }))
    const rules = join(dir, 'regions.json')
    await writeFile(rules, JSON.stringify({
      defaultRegion: 'us', rules: [{ region: 'eu', continents: ['EU'] }],
      endpoints: { eu: { brokers: [topology.brokers[1]!.url] }, us: { brokers: [topology.brokers[0]!.url] } },
    }))
    const env = {
      ROUTEMQ_MQTT_BROKERS: topology.brokers.map((b) => b.url).join(','),
      ROUTEMQ_MQTT_MODE: 'all',
      ROUTEMQ_MQTT_CLIENT_ID: 'module-test',
      ROUTEMQ_DATABASE_URL: topology.primary!.url,
      ROUTEMQ_DATABASE_REPLICA_URLS: topology.replicas[0]!.url,
      ROUTEMQ_DATABASE_REPLICA_REGIONS: 'eu',
      ROUTEMQ_DATABASE_MIGRATE: 'true',
      ROUTEMQ_GEOIP_DATABASE: database,
      ROUTEMQ_GEOIP_RULES_FILE: rules,
      ROUTEMQ_HEALTH_HOST: '127.0.0.1',
      ROUTEMQ_HEALTH_PORT: '0',
      ROUTEMQ_HEALTH_DRAIN_DELAY_MS: '0',
      PATH: process.env.PATH,
    }
    const module = LoadBalancingModule.fromEnv(env, { logger: silentLogger })

    const router = new Router()
    const answers = new Map<string, unknown>()
    let answered: (() => void) | undefined
    router.group({ prefix: 'devices/{id}', middleware: [] }, (devices) => {
      devices.on('telemetry', async (ctx) => {
        await ctx.container.resolve(Readings).save(ctx.params.id, (ctx.payload as { celsius: number }).celsius)
        await ctx.publish(`devices/${ctx.params.id}/saved`, { ok: true }, { qos: 1 })
      }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' } }), healthGate('primary')] })
      devices.on('config/get', async (ctx) => {
        await ctx.publish(`devices/${ctx.params.id}/config`, await ctx.container.resolve(Readings).of(ctx.params.id), { qos: 1 })
      }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' } })] })
      devices.on('hello', async (ctx) => {
        const redirects = new DeviceRedirects({ resolver: ctx.container.resolve<GeoResolver>(GEO_RESOLVER), health: brokerPoolHealth(ctx.container.resolve<BrokerPool>(BROKER_POOL)) })
        await ctx.publish(`devices/${ctx.params.id}/brokers`, redirects.brokersFor(ctx.geo), { qos: 1 })
      }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' } })] })
    })
    app = Application.create({ router, modules: [module], logger: silentLogger })
    await app.start()

    const c = app.container
    assert.equal(app.transport, c.resolve<BrokerPool>(BROKER_POOL), 'the broker pool is the transport')
    assert.equal(c.resolve<Kysely<Database>>(KYSELY), module.parts.kysely)
    assert.equal(c.resolve<ReplicaPool>(REPLICA_POOL), module.parts.replicas)
    assert.deepEqual(c.resolve<HealthMonitor>(HEALTH_MONITOR).names.slice().sort(), [
      ...topology.brokers.map((b) => `broker/127.0.0.1:${b.port}`), 'geo', 'primary', `replica/${module.parts.replicas!.stats.replicas[0]!.id}`, 'replicas',
    ].sort(), 'a check for every part')

    // A device on the second broker: in 'all' mode the app hears it there. The app spreads its publishes over
    // the brokers, and independent brokers do not share them, so the answers are awaited on every broker.
    device = await connectAsync(topology.brokers[1]!.url, { clientId: 'module-device' })
    const inbox = await connectAsync(topology.brokers[0]!.url, { clientId: 'module-device-inbox' })
    cleanup.push(() => inbox.endAsync())
    for (const client of [device, inbox]) {
      client.on('message', (topic, body) => {
        answers.set(topic, JSON.parse(body.toString()))
        answered?.()
      })
      await client.subscribeAsync('devices/+/+', { qos: 1 })
    }
    const reply = (topic: string) => new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${topic} within 10 s`)), 10_000)
      answered = () => {
        if (!answers.has(topic)) return
        clearTimeout(timer)
        resolve(answers.get(topic))
      }
      answered()
    })
    await device.publishAsync('devices/d1/telemetry', JSON.stringify({ ip: '81.2.69.1', celsius: 21.5 }), { qos: 1 })
    assert.deepEqual(await reply('devices/d1/saved'), { ok: true })
    await device.publishAsync('devices/d1/hello', JSON.stringify({ ip: '81.2.69.1' }), { qos: 1 })
    assert.deepEqual(await reply('devices/d1/brokers'), { ip: '81.2.69.1', region: 'eu', reason: 'found', brokers: [topology.brokers[1]!.url, topology.brokers[0]!.url] })
    // The read is in another message than the write: it waits for the replica to have the row (or reads the primary).
    await replicaHasRow(topology.replicas[0]!.url, 'd1')
    await device.publishAsync('devices/d1/config/get', JSON.stringify({ ip: '81.2.69.1' }), { qos: 1 })
    assert.deepEqual(await reply('devices/d1/config'), { count: 1, port: topology.replicas[0]!.port }, 'read on the eu replica')

    // Health and metrics of every part.
    const url = module.parts.health!.server!.url!
    assert.equal((await fetch(`${url}/ready`)).status, 200)
    const families = parsePrometheusText(await (await fetch(`${url}/metrics`)).text())
    for (const name of ['routemq_pool_requests_total', 'routemq_geo_lookups_total', 'routemq_replica_lag_seconds', 'routemq_messages_total']) {
      assert.ok(families.has(name), name)
    }
    const mqttRequests = families.get('routemq_pool_requests_total')!.samples.filter((s) => s.labels.pool === 'mqtt')
    assert.ok(mqttRequests.length > 0, 'the broker pool, as the transport, is measured')

    const kysely = c.resolve<Kysely<Database>>(KYSELY)
    await app.stop()
    assert.equal(module.parts.kysely, undefined, 'stopped parts are let go')
    await assert.rejects(fetch(`${url}/health`), 'the health server is closed')
    await assert.rejects(sql`select 1`.execute(kysely), 'the database pool is closed')
  })
})

/**
 * Until the replica has the device's row. A standby tells nobody when it
 * replays, so this asks it directly, every 20 ms, for at most 10 s.
 */
async function replicaHasRow(url: string, device: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const deadline = Date.now() + 10_000
    for (;;) {
      // The table itself may not have been replayed yet (42P01): that is "not yet" too.
      const rows = await client.query<{ count: string }>('select count(*) as count from module_readings where device = $1', [device]).then(
        (result) => result.rows,
        (error: { code?: string }) => {
          if (error.code === '42P01') return [{ count: '0' }]
          throw error
        },
      )
      if (Number(rows[0]!.count) > 0) return
      if (Date.now() > deadline) throw new Error('the replica did not replay the row within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  } finally {
    await client.end()
  }
}
