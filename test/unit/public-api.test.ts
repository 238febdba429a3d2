// The public API as the README shows it, compiled under this project's strict
// settings with every other test: a change that breaks a README snippet
// breaks the build. The runtime test checks the snippet's objects are real.
import assert from 'node:assert/strict'
import type { Kysely } from 'kysely'
import {
  Application, DeviceRedirects, GEO_RESOLVER, InjectKysely, LoadBalancingModule, ReadOnly, Repository, Router, Write, brokerPoolHealth, geoGate,
  geoRegion, healthGate, withConsistencyKey, type BrokerPool, type GeoResolver,
} from '../../src/index.js'

interface Database {
  readings: { device: string; celsius: number; at: Date }
  device_config: { device: string; interval_s: number; version: number }
}

@Repository()
class Readings {
  constructor(@InjectKysely() private readonly db: Kysely<Database>) {}

  @Write()
  async save(device: string, celsius: number): Promise<void> {
    await this.db.insertInto('readings').values({ device, celsius, at: new Date() }).execute()
  }

  @ReadOnly()
  async config(device: string): Promise<{ interval_s: number; version: number } | undefined> {
    return this.db.selectFrom('device_config').select(['interval_s', 'version']).where('device', '=', device).executeTakeFirst()
  }
}

/** The README's quick start, as a function (never started here: it needs real services). */
export function quickStart(env: NodeJS.ProcessEnv): Application {
  const router = new Router()
  router.group({ prefix: 'devices/{id}', middleware: [geoRegion({ ip: { userProperty: 'client-ip' } })] }, (devices) => {
    devices.on('telemetry', async (ctx) => {
      const { celsius } = ctx.payload as { celsius: number }
      await ctx.container.resolve(Readings).save(ctx.params.id, celsius)
    }, { qos: 1, shared: true, middleware: [healthGate('primary')] })
    devices.on('config/get', async (ctx) => {
      const config = await withConsistencyKey(ctx.params.id, () => ctx.container.resolve(Readings).config(ctx.params.id))
      await ctx.publish(`devices/${ctx.params.id}/config`, config ?? {}, { qos: 1 })
    }, { qos: 1, shared: true })
    devices.on('hello', async (ctx) => {
      const redirects = new DeviceRedirects({
        resolver: ctx.container.resolve<GeoResolver>(GEO_RESOLVER),
        health: brokerPoolHealth(ctx.container.resolve<BrokerPool>(Symbol.for('routemq-load-balancing.BrokerPool'))),
      })
      await ctx.publish(`devices/${ctx.params.id}/brokers`, redirects.brokersFor(ctx.geo), { qos: 1 })
    }, { qos: 1, middleware: [geoGate({ deny: { countries: ['KP'] } })] })
  })
  return Application.create({ router, modules: [LoadBalancingModule.fromEnv(env)] })
}

export function inCode(): LoadBalancingModule {
  return LoadBalancingModule.forRoot({
    mqtt: { brokers: ['mqtt://broker-1:1883', 'mqtt://broker-2:1883', 'mqtt://broker-3:1883'], mode: 'all' },
    database: { primary: 'postgres://app@db-1:5432/app', replicas: [{ url: 'postgres://app@db-2:5432/app', region: 'eu' }], maxLagMs: 5000 },
    geo: { database: '/var/lib/GeoIP/GeoLite2-City.mmdb', defaultRegion: 'eu', rules: [{ region: 'us', continents: ['NA'] }] },
    health: { http: { host: '0.0.0.0', port: 9464 } },
  })
}

export function async(): LoadBalancingModule {
  const SETTINGS = Symbol('settings')
  return LoadBalancingModule.forRootAsync({
    useFactory: async (settings: { brokers: string[] }) => ({ mqtt: { brokers: settings.brokers } }),
    inject: [SETTINGS],
  })
}

// @ts-expect-error a part the module does not know is a type error too
export const wrong = (): LoadBalancingModule => LoadBalancingModule.forRoot({ brokers: ['mqtt://b:1883'] })

describe('the public API as the README shows it', () => {
  it('compiles (this file is built with the tests) and builds the modules it shows', () => {
    assert.ok(inCode() instanceof LoadBalancingModule)
    assert.ok(async() instanceof LoadBalancingModule)
    const app = quickStart({ ROUTEMQ_MQTT_BROKERS: 'mqtt://127.0.0.1:1', ROUTEMQ_HEALTH_ENABLED: 'false', ROUTEMQ_METRICS_ENABLED: 'false' })
    assert.deepEqual(app.router.routes.map((r) => r.pattern), ['devices/{id}/telemetry', 'devices/{id}/config/get', 'devices/{id}/hello'])
  })
})
