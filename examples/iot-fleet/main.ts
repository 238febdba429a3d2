// `npm start`: the IoT fleet demo. A local topology (3 Mosquitto brokers, a
// PostgreSQL primary and 2 streaming replicas, one replaying 300 ms late), the
// fleet app on LoadBalancingModule, and 30 simulated devices on 6 gateways
// with addresses from several continents. While they publish, the demo
// SIGKILLs a broker, SIGKILLs a replica, and stops and restarts the primary,
// then reports what was sent, handled, lost, duplicated and read stale.
// Exits 1 if a message was lost or a read was stale.
//
// With ROUTEMQ_MQTT_BROKERS and ROUTEMQ_DATABASE_URL set, it runs against
// those instead, without faults.
import { fileURLToPath } from 'node:url'
import { Kysely, PostgresDialect } from 'kysely'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import { BrokerPool, ConsoleLogger, LoadBalancingModule, silentLogger, type FailoverEvent, type LoadBalancingOptions } from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { createFleetApp, createFleetSchema, newTally, type FleetDatabase } from './fleet-app.js'

const DEVICES = 30
const GATEWAYS = 6
const TELEMETRY_EVERY_MS = 400
const CONFIG_EVERY_MS = 2500
const TRAFFIC_S = 34
const REPLY_TIMEOUT_MS = 10_000
// Addresses of registries and public resolvers: where they are registered does not move.
const ADDRESSES = ['193.0.6.139', '8.8.8.8', '202.12.29.205', '200.3.14.10', '196.216.2.1', '2001:4860:4860::8888', '::ffff:193.0.6.139']
const RULES = [
  { region: 'europe', continents: ['EU', 'AF'] },
  { region: 'americas', continents: ['NA', 'SA'] },
  { region: 'apac', continents: ['AS', 'OC'] },
]

interface Fault {
  readonly at: number
  readonly label: string
  readonly run: (topology: Topology) => Promise<void>
}
const FAULTS: readonly Fault[] = [
  { at: 6, label: 'SIGKILL broker 1', run: (t) => t.brokers[0]!.kill() },
  { at: 11, label: 'restart broker 1', run: (t) => t.brokers[0]!.restart() },
  { at: 14, label: 'SIGKILL replica 1', run: (t) => t.replicas[0]!.kill() },
  { at: 19, label: 'restart replica 1', run: (t) => t.replicas[0]!.restart() },
  { at: 22, label: 'stop the primary', run: (t) => t.primary!.stop() },
  { at: 27, label: 'restart the primary', run: (t) => t.primary!.restart() },
]

const elapsed = (since: number): number => (performance.now() - since) / 1000

async function main(): Promise<number> {
  const began = performance.now()
  const external = process.env.ROUTEMQ_MQTT_BROKERS !== undefined && process.env.ROUTEMQ_DATABASE_URL !== undefined
  const geoDatabase = fileURLToPath(import.meta.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb'))
  let topology: Topology | undefined
  let module: LoadBalancingModule
  let brokerUrls: string[]
  let primaryUrl: string
  if (external) {
    console.log('Using the brokers and database of ROUTEMQ_MQTT_BROKERS and ROUTEMQ_DATABASE_URL (no faults).')
    module = LoadBalancingModule.fromEnv(process.env, process.env.ROUTEMQ_GEOIP_DATABASE ? {} : { geo: { database: geoDatabase, defaultRegion: 'europe', rules: RULES } })
    brokerUrls = process.env.ROUTEMQ_MQTT_BROKERS!.split(',').map((u) => u.trim())
    primaryUrl = process.env.ROUTEMQ_DATABASE_URL!.split(',')[0]!.trim()
  } else {
    console.log('Starting 3 Mosquitto brokers, a PostgreSQL primary and 2 streaming replicas (one 300 ms behind)...')
    topology = await startTopology({ brokers: 3, replicas: 2, replicaApplyDelayMs: [0, 300] })
    brokerUrls = topology.brokers.map((b) => b.url)
    primaryUrl = topology.primary!.url
    const options: LoadBalancingOptions = {
      // Independent Mosquitto brokers: the pool finds that out at start and listens on every one of them (all mode).
      // A stable client id, as a StatefulSet pod name gives, resumes the app's own sessions after a restart.
      mqtt: { brokers: brokerUrls, clientId: 'fleet-app' },
      database: { primary: primaryUrl, replicas: [{ url: topology.replicas[0]!.url, region: 'europe' }, { url: topology.replicas[1]!.url, region: 'americas' }], migrate: true },
      geo: { database: geoDatabase, defaultRegion: 'europe', rules: RULES, endpoints: { europe: { brokers: [brokerUrls[0]!] }, americas: { brokers: [brokerUrls[1]!] }, apac: { brokers: [brokerUrls[2]!] } } },
      health: { http: { host: '127.0.0.1', port: 0 }, shutdown: false },
    }
    module = LoadBalancingModule.forRoot(options)
  }

  // The demo's own connection, for the schema and the report. An idle connection is cut when the primary
  // stops; pg reports that on the pool, which would end the process if nobody listened.
  const schemaPool = new pg.Pool({ connectionString: primaryUrl, max: 1 })
  schemaPool.on('error', () => undefined)
  const schema = new Kysely<FleetDatabase>({ dialect: new PostgresDialect({ pool: schemaPool }) })
  try {
    await createFleetSchema(schema)
    await schema.deleteFrom('fleet_readings').execute()
    await schema.deleteFrom('fleet_config').execute()
  } catch (error) {
    await schema.destroy()
    await topology?.stop()
    throw error
  }

  const tally = newTally()
  const app = createFleetApp(module, tally, new ConsoleLogger({ level: 'error' }))
  const inboxes: MqttClient[] = []
  const gateways: BrokerPool[] = []
  const failovers: FailoverEvent[] = []
  const waiting = new Map<string, (body: unknown) => void>()
  const sent = new Set<string>()
  const regions = new Map<string, number>()
  let stale = 0
  let unanswered = 0
  let configChecks = 0
  let traffic = true
  let phase = 'steady traffic'
  let ticker: NodeJS.Timeout | undefined
  try {
    await app.start()
    const healthUrl = module.parts.health?.server?.url
    console.log(`Fleet app started; health on ${healthUrl ?? '(off)'}`)

    // The fleet's inbox: replies may be published on any broker, so it listens on all of them.
    for (const [i, url] of brokerUrls.entries()) {
      const inbox = await connectAsync(url, { clientId: `fleet-inbox-${i}`, reconnectPeriod: 250 })
      inbox.on('error', () => undefined)
      inbox.on('message', (topic, body) => {
        const resolve = waiting.get(topic)
        if (resolve) {
          waiting.delete(topic)
          resolve(JSON.parse(body.toString()))
        }
      })
      await inbox.subscribeAsync('fleet/#', { qos: 1 })
      inboxes.push(inbox)
    }
    const reply = (topic: string): Promise<unknown> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(topic)
          resolve(undefined)
        }, REPLY_TIMEOUT_MS)
        waiting.set(topic, (body) => {
          clearTimeout(timer)
          resolve(body)
        })
      })

    // Gateways: each connects to one broker at a time, of its own region while it is healthy, and fails over.
    // A gateway only publishes, and the app listens on every broker, so failover mode over independent brokers
    // loses nothing here; the topology check, which refuses it to a subscriber, is off for the gateways.
    // Not 'priority': failing back to a restarted Mosquitto before the app has subscribed there again would lose
    // what it accepts meanwhile (independent brokers drop messages nobody subscribes to).
    for (let g = 0; g < GATEWAYS; g++) {
      const brokers = brokerUrls.map((url, i) => ({ url, region: `zone-${i}` }))
      const gateway = new BrokerPool({
        brokers, mode: 'failover', topologyCheck: false, clean: true, region: `zone-${g % brokerUrls.length}`, clientId: `fleet-gateway-${g}`, logger: silentLogger,
      })
      gateway.onFailover((event) => event.from !== undefined && failovers.push(event))
      await gateway.connect(() => undefined)
      gateways.push(gateway)
    }

    const devices = Array.from({ length: DEVICES }, (_, i) => ({ id: `dev-${String(i + 1).padStart(2, '0')}`, ip: ADDRESSES[i % ADDRESSES.length]!, gateway: gateways[i % GATEWAYS]! }))
    for (const device of devices) {
      const answer = reply(`fleet/${device.id}/brokers`)
      await device.gateway.publish(`devices/${device.id}/hello`, JSON.stringify({ ip: device.ip }), { qos: 1 })
      const brokers = (await answer) as { region: string } | undefined
      regions.set(brokers?.region ?? 'no answer', (regions.get(brokers?.region ?? 'no answer') ?? 0) + 1)
    }

    const trafficStarted = performance.now()
    const loops = devices.map(async (device) => {
      let seq = 0
      let version = 0
      let nextConfig = performance.now() + Math.random() * CONFIG_EVERY_MS
      while (traffic) {
        const current = ++seq
        device.gateway.publish(`devices/${device.id}/telemetry`, JSON.stringify({ ip: device.ip, seq: current, celsius: 18 + Math.random() * 8 }), { qos: 1 })
          .then(() => sent.add(`${device.id}:${current}`), () => undefined)
        if (current % 3 === 0) device.gateway.publish(`devices/${device.id}/stats/get`, JSON.stringify({ ip: device.ip }), { qos: 1 }).catch(() => undefined)
        if (performance.now() >= nextConfig) {
          nextConfig = performance.now() + CONFIG_EVERY_MS
          // Set a new version, wait for its acknowledgement, then read it back: an older version is a stale read.
          const set = ++version
          const acked = reply(`fleet/${device.id}/config/ack`)
          await device.gateway.publish(`devices/${device.id}/config/set`, JSON.stringify({ ip: device.ip, version: set, intervalMs: 1000 + set }), { qos: 1 }).catch(() => undefined)
          if ((await acked) === undefined) {
            unanswered++
          } else {
            const read = reply(`fleet/${device.id}/config`)
            await device.gateway.publish(`devices/${device.id}/config/get`, JSON.stringify({ ip: device.ip }), { qos: 1 }).catch(() => undefined)
            const config = (await read) as { version: number } | undefined
            if (config === undefined) unanswered++
            else {
              configChecks++
              if (config.version < set) stale++
            }
          }
        }
        await new Promise((resolve) => setTimeout(resolve, TELEMETRY_EVERY_MS))
      }
    })

    // Faults, and the live table.
    const faults = topology ? [...FAULTS] : []
    const live = process.stdout.isTTY
    let lastPlain = 0
    const render = (): void => {
      const t = elapsed(trafficStarted)
      const replicas = module.parts.replicas!.stats
      const brokers = module.parts.brokers!.stats.brokers
      const handled = tally.handled.size
      const lines = [
        `t=${t.toFixed(1).padStart(5)} s  ${phase}`,
        `  telemetry sent ${String(sent.size).padStart(6)}   handled ${String(handled).padStart(6)}   in flight/held ${String(app.stats.inFlight).padStart(4)}   config checks ${configChecks}, stale ${stale}`,
        `  brokers   ${brokers.map((b, i) => `b${i + 1} ${b.connected ? 'up  ' : 'DOWN'} ${String(tally.byBroker.get(b.id) ?? 0).padStart(5)} msgs`).join('   ')}`,
        `  database  primary ${replicas.primary.healthy ? 'up  ' : 'DOWN'} ${String(replicas.writes).padStart(6)} writes   ${replicas.replicas.map((r, i) => `replica ${i + 1}${r.region ? ` (${r.region})` : ''} ${r.state === 'healthy' ? 'up  ' : 'DOWN'} ${String(r.queries).padStart(5)} reads lag ${r.lagMs === undefined ? '?' : `${Math.round(r.lagMs)} ms`}`).join('   ')}`,
        `  regions   ${[...tally.byRegion].map(([r, n]) => `${r} ${n}`).join('   ')}   health ${module.parts.health?.monitor.summary().status ?? 'off'}`,
      ]
      if (live) process.stdout.write(`\x1b[${lines.length}A\x1b[J${lines.join('\n')}\n`)
      else if (t - lastPlain >= 5) {
        lastPlain = t
        console.log(lines.join('\n'))
      }
    }
    if (live) process.stdout.write('\n'.repeat(5))
    ticker = setInterval(render, 500)
    while (elapsed(trafficStarted) < TRAFFIC_S) {
      const fault = faults[0]
      if (fault && elapsed(trafficStarted) >= fault.at) {
        faults.shift()
        phase = fault.label
        if (!live) console.log(`-- ${fault.label}`)
        await fault.run(topology!)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    phase = 'traffic stopped; draining'
    traffic = false
    await Promise.all(loops)
    // Every acknowledged reading must be handled; wait for the last ones (bounded).
    const deadline = Date.now() + 30_000
    while ([...sent].some((id) => !tally.handled.has(id)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
    clearInterval(ticker)
    render()

    // The report, from the database: what was stored, what was lost.
    const stored = new Set((await schema.selectFrom('fleet_readings').select(['device', 'seq']).execute()).map((r) => `${r.device}:${r.seq}`))
    const lost = [...sent].filter((id) => !stored.has(id))
    const duplicates = [...tally.handled.values()].reduce((sum, n) => sum + n - 1, 0)
    const gaps = failovers.map((f) => f.gapMs).sort((a, b) => a - b)
    console.log('\nReport')
    console.log(`  telemetry acknowledged by a broker  ${sent.size}`)
    console.log(`  stored in the database              ${stored.size}`)
    console.log(`  lost                                ${lost.length}${lost.length ? ` (${lost.slice(0, 5).join(', ')}...)` : ''}`)
    console.log(`  handled twice (stored once)         ${duplicates}`)
    console.log(`  config read-backs                   ${configChecks}, stale ${stale}, unanswered ${unanswered}`)
    console.log(`  gateway failovers                   ${gaps.length}${gaps.length ? `, gap median ${gaps[gaps.length >> 1]!.toFixed(0)} ms, max ${gaps[gaps.length - 1]!.toFixed(0)} ms` : ''}`)
    const portName = new Map<number, string>(topology ? [[topology.primary!.port, 'primary'], ...topology.replicas.map((r, i) => [r.port, `replica ${i + 1} (${i === 0 ? 'europe' : 'americas'})`] as [number, string])] : [])
    const byServer = (reads: Map<number, number>): string => [...reads].map(([port, n]) => `${portName.get(port) ?? port} ${n}`).join(', ')
    console.log(`  plain reads, by server              ${byServer(tally.statsReads)}`)
    console.log(`  read-your-writes reads, by server   ${byServer(tally.configReads)}`)
    console.log(`  devices by region (hello answers)   ${[...regions].map(([r, n]) => `${r} ${n}`).join(', ')}`)
    console.log(`  messages by broker                  ${[...tally.byBroker].map(([b, n]) => `${b} ${n}`).join(', ')}`)
    const ok = lost.length === 0 && stale === 0 && sent.size > 0
    console.log(`\n${ok ? 'OK' : 'FAILED'}: ${lost.length} lost, ${stale} stale, in ${elapsed(began).toFixed(1)} s`)
    return ok ? 0 : 1
  } finally {
    clearInterval(ticker)
    traffic = false
    await Promise.all(gateways.map((g) => g.close().catch(() => undefined)))
    await Promise.all(inboxes.map((i) => i.endAsync(true).catch(() => undefined)))
    await app.stop().catch(() => undefined)
    await schema.destroy()
    await topology?.stop()
  }
}

process.exitCode = await main()
