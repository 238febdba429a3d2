import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Application, ENV_VARIABLES, InvalidOptionError, LoadBalancingModule, Router, loadBalancingOptionsFromEnv, silentLogger, type LoadBalancingOptions,
} from '../../src/index.js'

const BROKER = 'mqtt://127.0.0.1:1'
const DB = 'postgres://app:s3cret@127.0.0.1:1/app'

/** The field of the InvalidOptionError `fn` throws; fails the test if it throws anything else or nothing. */
function fieldOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    if (error instanceof InvalidOptionError) {
      assert.doesNotMatch(error.message, /s3cret/, 'no password in the message')
      return error.field
    }
    throw error
  }
  assert.fail('no error')
}

describe('LoadBalancingModule configuration', () => {
  let dir: string
  let rulesFile: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lb-config-'))
    rulesFile = join(dir, 'rules.json')
    await writeFile(rulesFile, JSON.stringify({ defaultRegion: 'eu', rules: [{ region: 'us', countries: ['USA'] }] }))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  const codeCases: [string, unknown, string][] = [
    ['nothing configured', {}, 'loadBalancing'],
    ['an unknown part', { mqtt: { brokers: [BROKER] }, brokers: [] }, 'brokers'],
    ['no broker listed', { mqtt: { brokers: [] } }, 'mqtt.brokers'],
    ['a broker URL of another protocol', { mqtt: { brokers: ['http://b:1'] } }, 'mqtt.brokers[0].url'],
    ['a broker mode', { mqtt: { brokers: [BROKER], mode: 'both' } }, 'mqtt.mode'],
    ['a broker strategy', { mqtt: { brokers: [BROKER], strategy: 'fastest' } }, 'mqtt.strategy'],
    ['no primary', { database: { replicas: [DB] } }, 'database.primary'],
    ['a replica URL', { database: { primary: DB, replicas: ['mysql://x'] } }, 'database.replicas[0].url'],
    ['a consistency mode', { database: { primary: DB, consistency: { mode: 'strong' } } }, 'database.consistency.mode'],
    ['migrate not a boolean', { database: { primary: DB, migrate: 'yes' } }, 'database.migrate'],
    ['no GeoIP database path', { geo: { defaultRegion: 'eu' } }, 'geo.database'],
    ['a rule with a bad country', { geo: { database: 'x.mmdb', defaultRegion: 'eu', rules: [{ region: 'us', countries: ['USA'] }] } }, 'geo.rules[0].countries[0]'],
    ['endpoints of an unknown region', { geo: { database: 'x.mmdb', defaultRegion: 'eu', endpoints: { mars: {} } } }, 'geo.endpoints.mars'],
    ['a region endpoint naming no replica', { database: { primary: DB, replicas: [DB.replace(':1/', ':2/')] }, geo: { database: 'x.mmdb', defaultRegion: 'eu', endpoints: { eu: { replicas: ['nope'] } } } }, 'geo.endpoints.eu.replicas[0]'],
    ['health not an object', { mqtt: { brokers: [BROKER] }, health: 'on' }, 'health'],
    ['metrics not an object', { mqtt: { brokers: [BROKER] }, metrics: 1 }, 'metrics'],
    ['a logger without methods', { mqtt: { brokers: [BROKER] }, logger: {} }, 'logger'],
    ['a health port', { mqtt: { brokers: [BROKER] }, health: { http: { port: 'x' } } }, 'health.http.port'],
    ['a health connection cap of none', { mqtt: { brokers: [BROKER] }, health: { http: { maxConnections: 0 } } }, 'health.http.maxConnections'],
    ['a misspelt health HTTP option', { mqtt: { brokers: [BROKER] }, health: { http: { keepAliveMs: 1000 } } }, 'health.http.keepAliveMs'],
    ['a negative drain delay', { mqtt: { brokers: [BROKER] }, health: { shutdown: { drainDelayMs: -1 } } }, 'health.shutdown.drainDelayMs'],
    ['a metrics prefix', { mqtt: { brokers: [BROKER] }, metrics: { prefix: '1 bad' } }, 'metrics.prefix'],
    ['metrics settings with health off', { mqtt: { brokers: [BROKER] }, health: false, metrics: { prefix: 'x_' } }, 'metrics'],
  ]
  for (const [what, options, field] of codeCases) {
    it(`forRoot names ${field} for ${what}`, () => {
      assert.equal(fieldOf(() => LoadBalancingModule.forRoot(options as LoadBalancingOptions)), field)
    })
  }

  const envCases: [string, Record<string, string>, string][] = [
    ['nothing set', {}, 'ROUTEMQ_MQTT_BROKERS'],
    ['a misspelt variable', { ROUTEMQ_MQTT_BROKER: BROKER }, 'ROUTEMQ_MQTT_BROKER'],
    ['an empty entry in a list', { ROUTEMQ_MQTT_BROKERS: `${BROKER},,${BROKER}` }, 'ROUTEMQ_MQTT_BROKERS'],
    ['a broker URL refused deeper down', { ROUTEMQ_MQTT_BROKERS: 'ftp://b:1' }, 'ROUTEMQ_MQTT_BROKERS'],
    ['a mode', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_MODE: 'both' }, 'ROUTEMQ_MQTT_MODE'],
    ['a strategy', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_STRATEGY: 'fastest' }, 'ROUTEMQ_MQTT_STRATEGY'],
    ['a boolean', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_CLEAN: 'maybe' }, 'ROUTEMQ_MQTT_CLEAN'],
    ['a protocol version', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_PROTOCOL_VERSION: '3' }, 'ROUTEMQ_MQTT_PROTOCOL_VERSION'],
    ['a broker setting without brokers', { ROUTEMQ_DATABASE_URL: DB, ROUTEMQ_MQTT_MODE: 'all' }, 'ROUTEMQ_MQTT_MODE'],
    ['a number', { ROUTEMQ_DATABASE_URL: DB, ROUTEMQ_DATABASE_MAX_LAG_MS: '5s' }, 'ROUTEMQ_DATABASE_MAX_LAG_MS'],
    ['a consistency mode', { ROUTEMQ_DATABASE_URL: DB, ROUTEMQ_DATABASE_CONSISTENCY: 'strong' }, 'ROUTEMQ_DATABASE_CONSISTENCY'],
    ['regions not matching replicas', { ROUTEMQ_DATABASE_URL: DB, ROUTEMQ_DATABASE_REPLICA_URLS: DB, ROUTEMQ_DATABASE_REPLICA_REGIONS: 'eu,us' }, 'ROUTEMQ_DATABASE_REPLICA_REGIONS'],
    ['a primary URL refused deeper down', { ROUTEMQ_DATABASE_URL: 'mysql://app@db/app' }, 'ROUTEMQ_DATABASE_URL'],
    ['a replica setting without a primary', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_DATABASE_REPLICA_URLS: DB }, 'ROUTEMQ_DATABASE_REPLICA_URLS'],
    ['a rules file that is missing', { ROUTEMQ_GEOIP_DATABASE: 'x.mmdb', ROUTEMQ_GEOIP_RULES_FILE: '/nonexistent/rules.json' }, 'ROUTEMQ_GEOIP_RULES_FILE'],
    ['no default region anywhere', { ROUTEMQ_GEOIP_DATABASE: 'x.mmdb' }, 'ROUTEMQ_GEOIP_DEFAULT_REGION'],
    ['a health port', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_PORT: '70000' }, 'ROUTEMQ_HEALTH_PORT'],
    ['a health setting with health off', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_ENABLED: 'false', ROUTEMQ_HEALTH_PORT: '9000' }, 'ROUTEMQ_HEALTH_PORT'],
    ['a metrics prefix', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_METRICS_PREFIX: 'my-app' }, 'ROUTEMQ_METRICS_PREFIX'],
    ['a negative drain delay', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_DRAIN_DELAY_MS: '-1' }, 'ROUTEMQ_HEALTH_DRAIN_DELAY_MS'],
    ['a health host', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_HOST: 'a b/c' }, 'ROUTEMQ_HEALTH_HOST'],
    ['a metrics prefix with health off', { ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_ENABLED: 'false', ROUTEMQ_METRICS_PREFIX: 'x_' }, 'ROUTEMQ_METRICS_PREFIX'],
  ]
  for (const [what, env, variable] of envCases) {
    it(`fromEnv names ${variable} for ${what}`, () => {
      assert.equal(fieldOf(() => LoadBalancingModule.fromEnv(env)), variable)
    })
  }

  it('merges overrides over the environment one level deep, validates the result, and keeps credentials as given', () => {
    const options = loadBalancingOptionsFromEnv({ ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_PASSWORD: ' pass word ' }, { mqtt: { brokers: [BROKER], clientId: 'from-code' } as never })
    assert.equal(options.mqtt?.clientId, 'from-code')
    const env = loadBalancingOptionsFromEnv({ ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_PASSWORD: ' pass word ', ROUTEMQ_MQTT_CLIENT_ID: 'app' }, { mqtt: { keepaliveSeconds: 30 } as never })
    assert.deepEqual([env.mqtt?.clientId, env.mqtt?.keepaliveSeconds, (env.mqtt?.brokers[0] as { password: string }).password], ['app', 30, ' pass word '])
    const geoOnly = loadBalancingOptionsFromEnv({}, { geo: { database: 'x.mmdb', defaultRegion: 'eu' } })
    assert.equal(geoOnly.geo?.defaultRegion, 'eu', 'what the overrides add counts before "nothing configured" is decided')
  })

  it('fails the start, naming the route, when a geoRegion relies on a module without geo; and says a part is off', async () => {
    const { geoRegion } = await import('../../src/index.js')
    const router = new Router().on('devices/{id}/x', () => undefined, { middleware: [geoRegion({ ip: { payload: 'ip' } })] })
    const app = Application.create({ router, modules: [LoadBalancingModule.forRoot({ mqtt: { brokers: [BROKER] }, health: false })], logger: silentLogger })
    await assert.rejects(app.start(), (error: unknown) => error instanceof InvalidOptionError && error.field === 'geoRegion on route "devices/{id}/x"')
    assert.throws(() => app.container.resolve(Symbol.for('routemq-load-balancing.GeoResolver')), /belongs to an application that has stopped|is not configured/)
  })

  it('names the rules file for a bad rule inside it', () => {
    assert.equal(fieldOf(() => LoadBalancingModule.fromEnv({ ROUTEMQ_GEOIP_DATABASE: 'x.mmdb', ROUTEMQ_GEOIP_RULES_FILE: rulesFile })), 'ROUTEMQ_GEOIP_RULES_FILE')
  })

  it('reads every documented variable into the options', () => {
    const options = loadBalancingOptionsFromEnv({
      ROUTEMQ_MQTT_BROKERS: 'mqtt://b1:1883, mqtt://b2:1883', ROUTEMQ_MQTT_MODE: 'all', ROUTEMQ_MQTT_STRATEGY: 'round-robin', ROUTEMQ_MQTT_REGION: 'eu',
      ROUTEMQ_MQTT_CLIENT_ID: 'app-1', ROUTEMQ_MQTT_CLEAN: 'false', ROUTEMQ_MQTT_USERNAME: 'svc', ROUTEMQ_MQTT_PASSWORD: 'pw', ROUTEMQ_MQTT_PROTOCOL_VERSION: '4',
      ROUTEMQ_DATABASE_URL: 'postgres://app@db1/app', ROUTEMQ_DATABASE_REPLICA_URLS: 'postgres://app@db2/app,postgres://app@db3/app',
      ROUTEMQ_DATABASE_REPLICA_REGIONS: 'eu,', ROUTEMQ_DATABASE_REGION: 'eu', ROUTEMQ_DATABASE_STRATEGY: 'random', ROUTEMQ_DATABASE_MAX_LAG_MS: '5000',
      ROUTEMQ_DATABASE_MAX_LAG_BYTES: '1048576', ROUTEMQ_DATABASE_CONSISTENCY: 'window', ROUTEMQ_DATABASE_QUERY_TIMEOUT_MS: '2000', ROUTEMQ_DATABASE_POOL_SIZE: '4',
      ROUTEMQ_DATABASE_FALLBACK_TO_PRIMARY: 'no', ROUTEMQ_DATABASE_MIGRATE: 'yes',
      ROUTEMQ_HEALTH_HOST: '0.0.0.0', ROUTEMQ_HEALTH_PORT: '9100', ROUTEMQ_HEALTH_DRAIN_DELAY_MS: '2500', ROUTEMQ_METRICS_PREFIX: 'fleet_',
    })
    assert.deepEqual(options.mqtt, {
      brokers: [{ url: 'mqtt://b1:1883', username: 'svc', password: 'pw' }, { url: 'mqtt://b2:1883', username: 'svc', password: 'pw' }],
      mode: 'all', strategy: 'round-robin', region: 'eu', clientId: 'app-1', clean: false, protocolVersion: 4,
    })
    assert.deepEqual(options.database, {
      primary: 'postgres://app@db1/app', replicas: [{ url: 'postgres://app@db2/app', region: 'eu' }, 'postgres://app@db3/app'], region: 'eu', strategy: 'random',
      maxLagMs: 5000, maxLagBytes: 1048576, consistency: { mode: 'window' }, queryTimeoutMs: 2000, poolSize: 4, fallbackToPrimary: false, migrate: true,
    })
    assert.deepEqual(options.health, { http: { host: '0.0.0.0', port: 9100 }, shutdown: { drainDelayMs: 2500 } })
    assert.deepEqual(options.metrics, { prefix: 'fleet_' })
    assert.ok(ENV_VARIABLES.every((v) => /^ROUTEMQ_[A-Z_]+$/.test(v.name)))
  })

  it('with forRootAsync, validates what the factory returns at start, and starts nothing when it is wrong', async () => {
    const TOKEN = Symbol('settings')
    const module = LoadBalancingModule.forRootAsync({
      useFactory: async (settings: { brokers: string[] }) => ({ mqtt: { brokers: settings.brokers, mode: 'sideways' as never } }),
      inject: [TOKEN],
    })
    const app = Application.create({ router: new Router(), modules: [module], logger: silentLogger })
    app.container.register(TOKEN, { useValue: { brokers: [BROKER] } })
    await assert.rejects(app.start(), (error: unknown) => error instanceof InvalidOptionError && error.field === 'mqtt.mode')
    assert.equal(app.transport, undefined, 'no transport was even resolved')
    assert.equal(module.parts.brokers, undefined)
    assert.equal(app.state, 'created')
  })

  it('says what to do when a part is resolved before the application started', () => {
    const app = Application.create({ router: new Router(), modules: [LoadBalancingModule.forRoot({ mqtt: { brokers: [BROKER] } })], logger: silentLogger })
    assert.throws(() => app.container.resolve(Symbol.for('routemq-load-balancing.Kysely')), /built when the application starts/)
  })
})
