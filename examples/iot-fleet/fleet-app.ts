// The IoT fleet application: routes for device telemetry (a write), device
// configuration (a write, and a read answered on MQTT) and device hello
// (answered with the region's brokers), every route tagged with the sender's
// region, writes held while the primary is down. Built on LoadBalancingModule.
import { sql, type Kysely } from 'kysely'
import {
  Application, BROKER_POOL, DeviceRedirects, GEO_RESOLVER, InjectKysely, ReadOnly, Repository, Router, Write, brokerPoolHealth, geoRegion,
  healthGate, withConsistencyKey, type BrokerPool, type GeoResolver, type LoadBalancingModule, type Logger, type MessageContext,
} from '../../src/index.js'

export interface FleetDatabase {
  fleet_readings: { device: string; seq: number; celsius: number; region: string }
  fleet_config: { device: string; version: number; interval_ms: number }
}

/** The example's tables; the demo creates them on the primary. */
export async function createFleetSchema(db: Kysely<FleetDatabase>): Promise<void> {
  await sql`create table if not exists fleet_readings (device text not null, seq integer not null, celsius real not null, region text not null, primary key (device, seq))`.execute(db)
  await sql`create table if not exists fleet_config (device text primary key, version integer not null, interval_ms integer not null)`.execute(db)
}

@Repository()
export class FleetRepository {
  constructor(@InjectKysely() private readonly db: Kysely<FleetDatabase>) {}

  /** Idempotent: a redelivered reading is stored once. Says whether it was new. */
  @Write()
  async saveReading(device: string, seq: number, celsius: number, region: string): Promise<boolean> {
    const result = await this.db.insertInto('fleet_readings').values({ device, seq, celsius, region }).onConflict((c) => c.doNothing()).executeTakeFirst()
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0
  }

  @Write()
  async setConfig(device: string, version: number, intervalMs: number): Promise<void> {
    await this.db.insertInto('fleet_config').values({ device, version, interval_ms: intervalMs })
      .onConflict((c) => c.column('device').doUpdateSet({ version, interval_ms: intervalMs }).where('fleet_config.version', '<', version)).execute()
  }

  /** How many readings the device has stored, as the replica that answers knows it (no read-your-writes needed). */
  @ReadOnly()
  async readingCount(device: string): Promise<{ count: number; server_port: number }> {
    const { rows } = await sql<{ count: string; server_port: number }>`
      select count(*) as count, inet_server_port() as server_port from fleet_readings where device = ${device}`.execute(this.db)
    return { count: Number(rows[0]!.count), server_port: Number(rows[0]!.server_port) }
  }

  @ReadOnly()
  async config(device: string): Promise<{ version: number; interval_ms: number; server_port: number } | undefined> {
    const { rows } = await sql<{ version: number; interval_ms: number; server_port: number }>`
      select version, interval_ms, inet_server_port() as server_port from fleet_config where device = ${device}`.execute(this.db)
    return rows[0]
  }
}

/** What the app counts for the demo's table and report. */
export interface FleetTally {
  handled: Map<string, number>
  byBroker: Map<string, number>
  byRegion: Map<string, number>
  configReads: Map<number, number>
  /** Plain reads by the port of the server that answered. */
  statsReads: Map<number, number>
}

export function newTally(): FleetTally {
  return { handled: new Map(), byBroker: new Map(), byRegion: new Map(), configReads: new Map(), statsReads: new Map() }
}

const bump = <K>(map: Map<K, number>, key: K): void => void map.set(key, (map.get(key) ?? 0) + 1)

/** The router of the fleet app; `tally` sees every handled message. */
export function fleetRouter(tally: FleetTally): Router {
  const router = new Router()
  const located = geoRegion({ ip: { payload: 'ip' } })
  const count = (ctx: MessageContext): void => {
    bump(tally.byBroker, ctx.broker)
    bump(tally.byRegion, ctx.geo?.region ?? 'none')
  }
  router.group({ prefix: 'devices/{id}', middleware: [located] }, (devices) => {
    devices.on('telemetry', async (ctx) => {
      const { seq, celsius } = ctx.payload as { seq: number; celsius: number }
      await ctx.container.resolve(FleetRepository).saveReading(ctx.params.id, seq, celsius, ctx.geo!.region)
      bump(tally.handled, `${ctx.params.id}:${seq}`)
      count(ctx)
    }, { qos: 1, middleware: [healthGate('primary', { mode: 'hold' })] })

    devices.on('config/set', async (ctx) => {
      const { version, intervalMs } = ctx.payload as { version: number; intervalMs: number }
      // The device's own consistency key: its later reads see this write, from whichever message.
      await withConsistencyKey(ctx.params.id, () => ctx.container.resolve(FleetRepository).setConfig(ctx.params.id, version, intervalMs))
      await ctx.publish(`fleet/${ctx.params.id}/config/ack`, { version }, { qos: 1 })
      count(ctx)
    }, { qos: 1, middleware: [healthGate('primary', { mode: 'hold' })] })

    devices.on('config/get', async (ctx) => {
      const config = await withConsistencyKey(ctx.params.id, () => ctx.container.resolve(FleetRepository).config(ctx.params.id))
      if (config) bump(tally.configReads, config.server_port)
      await ctx.publish(`fleet/${ctx.params.id}/config`, { version: config?.version ?? 0 }, { qos: 1 })
      count(ctx)
    }, { qos: 1 })

    devices.on('stats/get', async (ctx) => {
      // A plain read: served by a replica of the sender's region when one is healthy.
      const stats = await ctx.container.resolve(FleetRepository).readingCount(ctx.params.id)
      bump(tally.statsReads, stats.server_port)
      await ctx.publish(`fleet/${ctx.params.id}/stats`, { readings: stats.count }, { qos: 0 })
      count(ctx)
    }, { qos: 1 })

    devices.on('hello', async (ctx) => {
      const redirects = new DeviceRedirects({
        resolver: ctx.container.resolve<GeoResolver>(GEO_RESOLVER),
        health: brokerPoolHealth(ctx.container.resolve<BrokerPool>(BROKER_POOL)),
      })
      await ctx.publish(`fleet/${ctx.params.id}/brokers`, redirects.brokersFor(ctx.geo), { qos: 1 })
      count(ctx)
    }, { qos: 1 })
  })
  return router
}

export function createFleetApp(module: LoadBalancingModule, tally: FleetTally, logger: Logger): Application {
  return Application.create({ router: fleetRouter(tally), modules: [module], logger, maxInFlight: 64 })
}
