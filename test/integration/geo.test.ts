import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kysely, sql } from 'kysely'
import { connectAsync, type MqttClient } from 'mqtt'
import {
  Application, BrokerPool, DeviceRedirects, GeoResolver, ReadOnly, ReplicaPool, ReplicatedPostgresDialect, Router, brokerPoolHealth, geoGate, geoRegion,
  isGeoBlockedError, isUntrustedLocationError, silentLogger, type GeoLocation,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { writeMmdb } from '../support/mmdb-writer.js'

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the test needs no table: the Kysely instance only routes
interface Database {}

class Servers {
  constructor(readonly db: Kysely<Database>) {}

  /** The port of the server that answers, as it reports itself. */
  @ReadOnly()
  async port(): Promise<number> {
    const { rows } = await sql<{ port: number }>`select inet_server_port() as port`.execute(this.db)
    return Number(rows[0]!.port)
  }
}

describe('geoRegion on a real broker and replicas tagged by region', function () {
  this.timeout(60_000)
  let topology: Topology
  let dir: string
  let devices: MqttClient | undefined
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ brokers: 1, replicas: 2 })
    dir = await mkdtemp(join(tmpdir(), 'geo-it-'))
  })
  after(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
    await devices?.endAsync()
    await topology?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it("sets ctx.geo from the sender's address, the message's reads go to a replica of its region (another one once it dies), geoGate drops, hello gets brokers", async () => {
    const database = join(dir, 'city.mmdb')
    await writeFile(database, writeMmdb([
      { network: '81.2.69.0/24', data: { continent: { code: 'EU' }, country: { iso_code: 'GB' } } },
      { network: '216.160.83.0/24', data: { continent: { code: 'NA' }, country: { iso_code: 'US' }, subdivisions: [{ iso_code: 'WA' }] } },
    ], { databaseType: 'GeoIP2-City' }))
    const [eu, us] = topology.replicas
    const resolver = await GeoResolver.open({
      database, watch: false, defaultRegion: 'eu',
      rules: [{ region: 'eu', continents: ['EU'] }, { region: 'us', countries: ['US'] }],
      endpoints: { us: { brokers: ['mqtts://us.example:8883'] }, eu: { brokers: [topology.brokers[0]!.url, 'mqtt://eu-down.example:1883'] } },
    })
    cleanup.push(async () => resolver.close())
    const pool = await ReplicaPool.create({
      primary: topology.primary!.url,
      replicas: [{ url: eu!.url, region: 'eu' }, { url: us!.url, region: 'us' }],
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    const servers = new Servers(db)

    const seen: { id: string; geo: GeoLocation; port: number }[] = []
    let onSeen: (() => void) | undefined
    const router = new Router()
    router.on('devices/{id}/hello', async (ctx) => {
      assert.equal(ctx.geo, ctx.state.geo, 'ctx.geo is the location geoRegion set')
      seen.push({ id: ctx.params.id, geo: ctx.geo!, port: await servers.port() })
      onSeen?.()
    }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' }, resolver })] })
    router.on('devices/{id}/ping', async (ctx) => {
      seen.push({ id: ctx.params.id, geo: ctx.geo!, port: await servers.port() })
      onSeen?.()
    }, { qos: 1, middleware: [geoRegion({ ip: { userProperty: 'client-ip' }, resolver })] })
    // Commands only from the EU; the rest are dropped with GeoBlockedError and counted.
    const euOnly = geoGate({ allow: { regions: ['eu'] } })
    const commands: string[] = []
    const blocked: unknown[] = []
    router.on('devices/{id}/cmd', async (ctx) => {
      commands.push(ctx.params.id)
      onSeen?.()
    }, {
      qos: 1,
      middleware: [
        async (ctx, next) => {
          try {
            return await next(ctx)
          } catch (error) {
            blocked.push(error)
            onSeen?.()
            throw error
          }
        },
        geoRegion({ ip: { payload: 'ip' }, resolver }), euOnly,
      ],
    })
    // The device redirect: healthy brokers of the sender's region, from the app's own broker pool's probes.
    const brokers = new BrokerPool({ brokers: [topology.brokers[0]!.url], clientId: 'geo-app' })
    const redirects = new DeviceRedirects({ resolver, health: brokerPoolHealth(brokers) })
    router.on('devices/{id}/where', async (ctx) => {
      await ctx.publish(`devices/${ctx.params.id}/brokers`, redirects.brokersFor(ctx.geo))
    }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' }, resolver })] })
    // A handler that lets the device say where it is: what arrives is the device's, never the resolver's location.
    const outcomes: { readonly error?: unknown; readonly brokers?: readonly string[] }[] = []
    router.on('devices/{id}/where-at', async (ctx) => {
      try {
        const answer = redirects.brokersFor((ctx.payload as { at?: unknown }).at ?? ctx.geo)
        outcomes.push({ brokers: answer.brokers })
        await ctx.publish(`devices/${ctx.params.id}/brokers`, answer)
      } catch (error) {
        outcomes.push({ error })
        throw error
      } finally {
        onSeen?.()
      }
    }, { qos: 1, middleware: [geoRegion({ ip: { payload: 'ip' }, resolver })] })
    const app = Application.create({ router, transport: brokers, logger: silentLogger })
    await app.start()
    cleanup.push(() => app.stop())

    devices = await connectAsync(topology.brokers[0]!.url, { clientId: 'geo-devices', protocolVersion: 5 })
    const sends: [string, string, Record<string, string>?][] = []
    for (let i = 0; i < 10; i++) {
      sends.push([`devices/us-${i}/hello`, JSON.stringify({ ip: '216.160.83.56' })])
      sends.push([`devices/eu-${i}/hello`, JSON.stringify({ ip: '81.2.69.142' })])
    }
    sends.push(['devices/us-prop/ping', '', { 'client-ip': '::ffff:216.160.83.1' }])
    sends.push(['devices/bad/hello', JSON.stringify({ ip: 'not-an-ip' })])
    const all = new Promise<void>((resolve) => (onSeen = () => seen.length === sends.length && resolve()))
    for (const [topic, body, userProperties] of sends) {
      await devices.publishAsync(topic, body, { qos: 1, ...(userProperties ? { properties: { userProperties } } : {}) })
    }
    await all

    for (const { id, geo, port } of seen) {
      const region = id.startsWith('us') ? 'us' : 'eu'
      assert.equal(geo.region, region, id)
      assert.equal(port, region === 'us' ? us!.port : eu!.port, `${id}: read on the ${region} replica`)
    }
    const us0 = seen.find((s) => s.id === 'us-0')!.geo
    assert.deepEqual([us0.ip, us0.country, us0.continent, us0.subdivision, us0.reason], ['216.160.83.56', 'US', 'NA', 'WA', 'found'])
    assert.deepEqual(us0.endpoints, { brokers: ['mqtts://us.example:8883'] })
    assert.equal(seen.find((s) => s.id === 'us-prop')!.geo.ip, '216.160.83.1', 'from the MQTT 5 user property, IPv4-mapped')
    assert.deepEqual([seen.find((s) => s.id === 'bad')!.geo.reason, seen.find((s) => s.id === 'bad')!.geo.region], ['invalid', 'eu'])
    assert.equal(app.stats.failed, 0)

    // geoGate: the EU command runs, the US one is dropped (acknowledged, not handled) with a named error.
    const gated = new Promise<void>((resolve) => (onSeen = () => commands.length + blocked.length === 2 && resolve()))
    await devices.publishAsync('devices/eu-1/cmd', JSON.stringify({ ip: '81.2.69.142' }), { qos: 1 })
    await devices.publishAsync('devices/us-1/cmd', JSON.stringify({ ip: '216.160.83.56' }), { qos: 1 })
    await gated
    assert.deepEqual(commands, ['eu-1'])
    assert.ok(isGeoBlockedError(blocked[0]), String(blocked[0]))
    assert.deepEqual([blocked[0].reason, blocked[0].country, blocked[0].region], ['not-allowed', 'US', 'us'])
    assert.deepEqual([euOnly.stats.passed, euOnly.stats.blocked], [1, 1])

    // Device redirect: the EU broker the pool's probes find healthy; the one it has no broker for is unknown, listed after.
    const answer = new Promise<unknown>((resolve) => devices!.once('message', (_topic, body) => resolve(JSON.parse(body.toString()))))
    await devices.subscribeAsync('devices/eu-9/brokers', { qos: 1 })
    await devices.publishAsync('devices/eu-9/where', JSON.stringify({ ip: '81.2.69.1' }), { qos: 1 })
    assert.deepEqual(await answer, { ip: '81.2.69.1', region: 'eu', reason: 'found', brokers: [topology.brokers[0]!.url, 'mqtt://eu-down.example:1883'] })

    // The region's replica dies: the region's messages are read on a replica of another region.
    await us!.kill()
    const before = seen.length
    const fallback = new Promise<void>((resolve) => (onSeen = () => seen.length === before + 3 && resolve()))
    for (let i = 0; i < 3; i++) await devices.publishAsync(`devices/us-after-${i}/hello`, JSON.stringify({ ip: '216.160.83.56' }), { qos: 1 })
    await fallback
    for (const { id, geo, port } of seen.slice(before)) {
      assert.equal(geo.region, 'us', id)
      assert.equal(port, eu!.port, `${id}: read on the surviving replica`)
    }
    assert.equal(app.stats.failed, 1, 'only the blocked command failed')

    // A device that sends a location of its own, pointing at a broker of its choosing, gets no answer: its
    // message fails with UntrustedLocationError. One that sends only its address gets its region's brokers.
    const forged = { ip: '81.2.69.1', region: 'eu', reason: 'found', endpoints: { brokers: ['mqtt://attacker.example:1883'] } }
    const replies: unknown[] = []
    devices.on('message', (topic, body) => topic === 'devices/eu-evil/brokers' && replies.push(JSON.parse(body.toString())))
    await devices.subscribeAsync('devices/eu-evil/brokers', { qos: 1 })
    const handled = new Promise<void>((resolve) => (onSeen = () => outcomes.length === 2 && resolve()))
    await devices.publishAsync('devices/eu-evil/where-at', JSON.stringify({ ip: '81.2.69.1', at: forged }), { qos: 1 })
    await devices.publishAsync('devices/eu-evil/where-at', JSON.stringify({ ip: '81.2.69.1' }), { qos: 1 })
    await handled
    assert.deepEqual(outcomes.map((o) => o.brokers?.join(' ') ?? (isUntrustedLocationError(o.error) ? 'refused' : String(o.error))).sort(),
      [`${topology.brokers[0]!.url} mqtt://eu-down.example:1883`, 'refused'], 'the forged location is refused, the address answered')
    while (replies.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.deepEqual(replies, [{ ip: '81.2.69.1', region: 'eu', reason: 'found', brokers: [topology.brokers[0]!.url, 'mqtt://eu-down.example:1883'] }],
      'no reply names the broker the device chose')
    assert.equal(app.stats.failed, 2)
  })
})
