import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  Application, BrokerPool, ConsoleLogger, ENV_VARIABLES, GeoResolver, GracefulShutdown, HealthModule, HealthMonitor, InvalidOptionError, LoadBalancingMetrics,
  LoadBalancingModule, ReplicaPool, Router, geoGate, geoRegion, healthGate, loadBalancingOptionsFromEnv, silentLogger, validateLoadBalancingOptions, type LoadBalancingOptions,
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
    const options = loadBalancingOptionsFromEnv({ ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_PASSWORD: ' pass word ' }, { mqtt: { brokers: [BROKER], clientId: 'from-code' } })
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

/** The InvalidOptionError `fn` throws (its field and message); fails the test if it throws anything else or nothing. */
function refusal(fn: () => unknown): { field: string; message: string } {
  try {
    fn()
  } catch (error) {
    if (error instanceof InvalidOptionError) return { field: error.field, message: error.message }
    throw error
  }
  assert.fail('accepted')
}

// Issue 15, defect 8: typos and wrong types in code options were accepted silently.
describe('LoadBalancingModule refuses typos and wrong types in code options', () => {
  const forRoot = (options: unknown) => () => LoadBalancingModule.forRoot(options as LoadBalancingOptions)

  it('refuses database.replica (so no replicas), suggesting database.replicas', () => {
    const { field, message } = refusal(forRoot({ database: { primary: DB, replica: [DB.replace(':1/', ':2/')] } }))
    assert.equal(field, 'database.replica')
    assert.match(message, /did you mean database\.replicas\?/)
  })

  it('refuses mqtt.offlineBufer, suggesting the full path mqtt.offlineBuffer', () => {
    const { field, message } = refusal(forRoot({ mqtt: { brokers: [BROKER], offlineBufer: { maxMessages: 10 } } }))
    assert.equal(field, 'mqtt.offlineBufer')
    assert.match(message, /did you mean mqtt\.offlineBuffer\?/)
  })

  it('refuses health.htpp, suggesting health.http', () => {
    const { field, message } = refusal(forRoot({ mqtt: { brokers: [BROKER] }, health: { htpp: { port: 9000 } } }))
    assert.equal(field, 'health.htpp')
    assert.match(message, /did you mean health\.http\?/)
  })

  it('refuses fallbackToPrimary: "no", which acted as true', () => {
    const { field, message } = refusal(forRoot({ database: { primary: DB, fallbackToPrimary: 'no' } }))
    assert.equal(field, 'database.fallbackToPrimary')
    assert.match(message, /must be true or false/)
  })

  it('refuses clean: "false", which acted as clean, in the module and in the default transport', () => {
    assert.equal(refusal(forRoot({ mqtt: { brokers: [BROKER], clean: 'false' } })).field, 'mqtt.clean')
    const { field, message } = refusal(() => Application.create({ router: new Router(), mqtt: { url: BROKER, clientId: 'a', clean: 'false' as never }, logger: silentLogger }))
    assert.equal(field, 'mqtt.clean')
    assert.match(message, /must be true or false/)
  })

  it('refuses database.region: 42', () => {
    const { field, message } = refusal(forRoot({ database: { primary: DB, region: 42 } }))
    assert.equal(field, 'database.region')
    assert.match(message, /region name/)
  })

  it('refuses a broker id with a space, which failed at start as check.name', () => {
    const { field, message } = refusal(forRoot({ mqtt: { brokers: [{ url: BROKER, id: 'broker 1' }] } }))
    assert.equal(field, 'mqtt.brokers[0].id')
    assert.match(message, /letters, digits/)
    assert.equal(refusal(forRoot({ database: { primary: DB, replicas: [{ url: DB.replace(':1/', ':2/'), id: 'replica 1' }] } })).field, 'database.replicas[0].id')
  })

  it('refuses shutdown.signals SIGKILL and SIGSTOP, which failed at start with uv_signal_start EINVAL', () => {
    for (const signal of ['SIGKILL', 'SIGSTOP']) {
      const { field, message } = refusal(forRoot({ mqtt: { brokers: [BROKER] }, health: { shutdown: { signals: ['SIGTERM', signal] } } }))
      assert.equal(field, 'health.shutdown.signals[1]')
      assert.match(message, new RegExp(`${signal} cannot be caught`))
    }
  })

  it('refuses the same in the parts built on their own', async () => {
    assert.match(refusal(() => new BrokerPool({ brokers: [BROKER], offlineBufer: {} } as never)).message, /did you mean offlineBuffer\?/)
    assert.equal(refusal(() => new BrokerPool({ brokers: [{ url: BROKER, id: 'b 1' }] })).field, 'brokers[0].id')
    await assert.rejects(ReplicaPool.create({ primary: DB, replica: [DB] } as never), (e: unknown) => e instanceof InvalidOptionError && e.field === 'replica')
    await assert.rejects(ReplicaPool.create({ primary: DB, fallbackToPrimary: 'no' } as never), (e: unknown) => e instanceof InvalidOptionError && e.field === 'fallbackToPrimary')
    await assert.rejects(GeoResolver.open({ database: 'x.mmdb', defaultRegion: 'eu', wacth: false } as never), (e: unknown) => e instanceof InvalidOptionError && e.field === 'geo.wacth')
    assert.equal(refusal(() => new HealthModule({ htpp: {} } as never)).field, 'health.htpp')
    assert.equal(refusal(() => new HealthModule({ shutdown: { signals: ['SIGKILL'] } })).field, 'health.shutdown.signals[0]')
    const steps = { beginShutdown: () => undefined, stop: async () => undefined, logger: silentLogger }
    assert.equal(refusal(() => new GracefulShutdown({ signals: ['SIGSTOP'] }, steps)).field, 'health.shutdown.signals[0]')
    assert.equal(refusal(() => new GracefulShutdown({ exit: 'no' } as never, steps)).field, 'health.shutdown.exit')
    assert.equal(refusal(() => new LoadBalancingMetrics({ prefx: 'app_' } as never)).field, 'metrics.prefx')
    assert.equal(refusal(() => new HealthMonitor().register({ name: 'db', check: () => undefined, critical: 'no' } as never)).field, 'checks["db"].critical')
  })

  it('refuses misspelt and mistyped options of the middleware and of forRootAsync', () => {
    const refused = (fn: () => unknown): string => refusal(fn).field
    assert.equal(refused(() => healthGate('primary', { maxHold: 1000 } as never)), 'healthGate.maxHold')
    assert.equal(refused(() => healthGate('primary', { maxHeld: '10' } as never)), 'healthGate.maxHeld')
    assert.equal(refused(() => geoGate({ deny: { countries: ['KP'] }, unkown: 'deny' } as never)), 'geoGate.unkown')
    assert.equal(refused(() => geoGate({ allow: { country: ['DE'] } } as never)), 'geoGate.allow.country')
    assert.equal(refused(() => geoRegion({ ip: { payload: 'ip' }, reslover: {} } as never)), 'geoRegion.reslover')
    assert.equal(refused(() => geoRegion({ ip: { paylod: 'ip' } } as never)), 'geoRegion.ip.paylod')
    assert.equal(refused(() => LoadBalancingModule.forRootAsync({ useFactory: () => ({}), injct: [] } as never)), 'forRootAsync.injct')
    assert.match(refusal(() => geoGate({ deny: { regions: ['x'] }, nmae: 'gate' } as never)).message, /did you mean geoGate\.name\?/)
  })

  it('refuses a ConsoleLogger level it does not know, which wrote nothing at all', () => {
    assert.equal(refusal(() => new ConsoleLogger({ level: 'warning' as never })).field, 'logger.level')
    assert.match(refusal(() => new ConsoleLogger({ levle: 'warn' } as never)).message, /did you mean logger\.level\?/)
  })

  // Each level of the tree: a misspelt key there is refused with the full path of the key it was meant to be.
  const typos: [string, string, unknown][] = [
    ['heath', 'health', { mqtt: { brokers: [BROKER] }, heath: { http: false } }],
    ['mqtt.brokerz', 'mqtt.brokers', { mqtt: { brokers: [BROKER], brokerz: [] } }],
    ['mqtt.brokers[0].wieght', 'mqtt.brokers[0].weight', { mqtt: { brokers: [{ url: BROKER, wieght: 2 }] } }],
    ['mqtt.brokers[1].tls.rejectUnauthorised', 'mqtt.brokers[1].tls.rejectUnauthorized', { mqtt: { brokers: [BROKER, { url: 'mqtts://b:8883', tls: { rejectUnauthorised: false } }] } }],
    ['mqtt.sessions.adoptOrphan', 'mqtt.sessions.adoptOrphans', { mqtt: { brokers: [BROKER], sessions: { adoptOrphan: false } } }],
    ['mqtt.health.rize', 'mqtt.health.rise', { mqtt: { brokers: [BROKER], health: { rize: 3 } } }],
    ['mqtt.offlineBuffer.maxMessage', 'mqtt.offlineBuffer.maxMessages', { mqtt: { brokers: [BROKER], offlineBuffer: { maxMessage: 5 } } }],
    ['database.migrat', 'database.migrate', { database: { primary: DB, migrat: true } }],
    ['database.primary.regoin', 'database.primary.region', { database: { primary: { url: DB, regoin: 'eu' } } }],
    ['database.primary[1].weigth', 'database.primary[1].weight', { database: { primary: [DB, { url: DB.replace(':1/', ':2/'), weigth: 2 }] } }],
    ['database.replicas[0].idd', 'database.replicas[0].id', { database: { primary: DB, replicas: [{ url: DB, idd: 'r1' }] } }],
    ['database.consistency.windowMS', 'database.consistency.windowMs', { database: { primary: DB, consistency: { windowMS: 10 } } }],
    ['database.health.probeInterval', 'database.health.probeIntervalMs', { database: { primary: DB, health: { probeInterval: 10 } } }],
    ['geo.wacth', 'geo.watch', { geo: { database: 'x.mmdb', defaultRegion: 'eu', wacth: false } }],
    ['geo.rules[0].contries', 'geo.rules[0].countries', { geo: { database: 'x.mmdb', defaultRegion: 'eu', rules: [{ region: 'us', countries: ['US'], contries: ['CA'] }] } }],
    ['geo.endpoints.eu.broker', 'geo.endpoints.eu.brokers', { geo: { database: 'x.mmdb', defaultRegion: 'eu', endpoints: { eu: { broker: ['mqtt://eu:1883'] } } } }],
    ['health.http.prot', 'health.http.port', { mqtt: { brokers: [BROKER] }, health: { http: { prot: 9000 } } }],
    ['health.shutdown.drainDelay', 'health.shutdown.drainDelayMs', { mqtt: { brokers: [BROKER] }, health: { shutdown: { drainDelay: 10 } } }],
    ['health.checks[0].intervalMS', 'health.checks[0].intervalMs', { mqtt: { brokers: [BROKER] }, health: { checks: [{ name: 'cache', check: () => undefined, intervalMS: 10 }] } }],
    ['metrics.prefx', 'metrics.prefix', { mqtt: { brokers: [BROKER] }, metrics: { prefx: 'app_' } }],
  ]
  for (const [field, meant, options] of typos) {
    it(`refuses the misspelt ${field}, suggesting ${meant}`, () => {
      const refused = refusal(forRoot(options))
      assert.equal(refused.field, field)
      assert.ok(refused.message.includes(`did you mean ${meant}?`), refused.message)
    })
  }

  // Each level of the tree: a value of the wrong type there is refused, naming its full path.
  const wrongTypes: [string, unknown, RegExp][] = [
    ['mqtt.topologyCheck', { mqtt: { brokers: [BROKER], mode: 'all', topologyCheck: 'false' } }, /true or false/],
    ['mqtt.region', { mqtt: { brokers: [BROKER], region: '' } }, /region name/],
    ['mqtt.brokers[0].region', { mqtt: { brokers: [{ url: BROKER, region: 7 }] } }, /region name/],
    ['mqtt.brokers[0].weight', { mqtt: { brokers: [{ url: BROKER, weight: Infinity }] } }, /number of 0 or more/],
    ['mqtt.brokers[0].tls.rejectUnauthorized', { mqtt: { brokers: [{ url: 'mqtts://b:8883', tls: { rejectUnauthorized: 'false' } }] } }, /true or false/],
    ['mqtt.brokers[0].tls.ca[1]', { mqtt: { brokers: [{ url: 'mqtts://b:8883', tls: { ca: ['pem', 42] } }] } }, /PEM text or a Buffer/],
    ['mqtt.brokers[1]', { mqtt: { brokers: [BROKER, 1883] } }, /URL/],
    ['mqtt.sessions.adoptOrphans', { mqtt: { brokers: [BROKER], sessions: { adoptOrphans: 'yes' } } }, /true or false/],
    ['mqtt.offlineBuffer.maxBytes', { mqtt: { brokers: [BROKER], offlineBuffer: { maxBytes: '1MB' } } }, /whole number/],
    ['mqtt.env.MQTT_PASS', { mqtt: { brokers: [BROKER], env: { MQTT_PASS: 1234 } } }, /string/],
    ['mqtt.logger', { mqtt: { brokers: [BROKER], logger: console.log } }, /Logger/],
    ['database.migrate', { database: { primary: DB, migrate: 'yes' } }, /true or false/],
    ['database.poolSize', { database: { primary: DB, poolSize: '10' } }, /whole number/],
    ['database.maxLagMs', { database: { primary: DB, maxLagMs: NaN } }, /whole number/],
    ['database.heartbeatTable', { database: { primary: DB, heartbeatTable: true } }, /table name/],
    ['database.consistency.maxKeys', { database: { primary: DB, consistency: { maxKeys: 1.5 } } }, /whole number/],
    ['database.consistency', { database: { primary: DB, consistency: 'lsn' } }, /object/],
    ['database.replicas[0].region', { database: { primary: DB, replicas: [{ url: DB, region: 42 }] } }, /region name/],
    ['database.primary[0]', { database: { primary: [null] } }, /URL/],
    ['geo.cacheSize', { geo: { database: 'x.mmdb', defaultRegion: 'eu', cacheSize: -1 } }, /whole number/],
    ['geo.watch', { geo: { database: 'x.mmdb', defaultRegion: 'eu', watch: 'no' } }, /true or false/],
    ['geo.rules[0].region', { geo: { database: 'x.mmdb', defaultRegion: 'eu', rules: [{ region: 'us west', countries: ['US'] }] } }, /region/],
    ['geo.endpoints.eu.apiUrls', { geo: { database: 'x.mmdb', defaultRegion: 'eu', endpoints: { eu: { apiUrls: 'https://eu.example' } } } }, /list/],
    ['health.http', { mqtt: { brokers: [BROKER] }, health: { http: true } }, /false for no endpoints/],
    ['health.shutdown.exit', { mqtt: { brokers: [BROKER] }, health: { shutdown: { exit: 'no' } } }, /true or false/],
    ['health.shutdown.signals[0]', { mqtt: { brokers: [BROKER] }, health: { shutdown: { signals: ['sigterm'] } } }, /signal name/],
    ['health.shutdown.signals[1]', { mqtt: { brokers: [BROKER] }, health: { shutdown: { signals: ['SIGTERM', 'SIGTERM'] } } }, /listed twice/],
    ['health.shutdown.signals[0]', { mqtt: { brokers: [BROKER] }, health: { shutdown: { signals: ['SIGSEGV'] } } }, /fault/],
    ['health.checks[0].critical', { mqtt: { brokers: [BROKER] }, health: { checks: [{ name: 'cache', check: () => undefined, critical: 'no' }] } }, /true or false/],
    ['metrics.defaultMetrics', { mqtt: { brokers: [BROKER] }, metrics: { defaultMetrics: 'no' } }, /true or false/],
    ['metrics.registry', { mqtt: { brokers: [BROKER] }, metrics: { registry: {} } }, /Registry/],
    ['logger', { mqtt: { brokers: [BROKER] }, logger: { warn: () => undefined } }, /Logger/],
  ]
  for (const [field, options, reason] of wrongTypes) {
    it(`refuses a wrong ${field}, naming its full path`, () => {
      const refused = refusal(forRoot(options))
      assert.equal(refused.field, field)
      assert.match(refused.message, reason)
    })
  }

  it('takes a complete options tree with every key at every depth', () => {
    const options: LoadBalancingOptions = {
      mqtt: {
        brokers: ['mqtt://b1:1883', { url: 'mqtts://b2:8883', id: 'b2:8883', weight: 2, region: 'eu-west', username: 'u', password: '', usernameEnv: 'U', passwordEnv: 'P', tls: { ca: ['pem', Buffer.from('pem')], cert: 'c', key: Buffer.from('k'), rejectUnauthorized: true } }],
        mode: 'failover', topologyCheck: true, topologyCheckTimeoutMs: 1000, group: 'fleet', controlTopic: 'ctl/x', sessions: { adoptOrphans: true, orphanAfterSeconds: 10 },
        receiveMaximum: 100, watchBrokerDrops: false, strategy: 'priority', region: 'eu-west', clientId: 'app-1', clean: false, sessionExpirySeconds: 3600,
        protocolVersion: 4, keepaliveSeconds: 30, connectTimeoutMs: 1000, startTimeoutMs: 1000, closeTimeoutMs: 0, ackOrder: 'completion',
        health: { probeIntervalMs: 1, probeTimeoutMs: 1, rise: 1, fall: 1, publishAckTimeoutMs: 1, backoffBaseMs: 1, backoffCapMs: 2 },
        offlineBuffer: { maxMessages: 1, maxBytes: 1, qos0: 'drop' }, env: { U: 'svc', P: 'pw', OTHER: undefined }, logger: silentLogger,
      },
      database: {
        primary: [DB, { url: DB.replace(':1/', ':2/'), id: 'db-2', region: 'eu-west', weight: 0 }], replicas: [{ url: DB.replace(':1/', ':3/'), id: 'db-3' }],
        strategy: 'random', region: 'eu-west', poolSize: 1, connectTimeoutMs: 1, queryTimeoutMs: 0, closeTimeoutMs: 0, maxLagMs: 0, maxLagBytes: 0,
        fallbackToPrimary: false, readRetries: 0, consistency: { mode: 'window', windowMs: 0, maxKeys: 1 }, health: { probeIntervalMs: 1, probeTimeoutMs: 1, rise: 1, fall: 1 },
        heartbeatTable: false, cursor: class {} as never, logger: silentLogger, migrate: false,
      },
      geo: {
        database: 'x.mmdb', defaultRegion: 'eu-west', rules: [{ region: 'us', continents: ['NA'], countries: ['US'], subdivisions: ['US-CA'] }],
        endpoints: { us: { brokers: ['mqtt://us:1883'], apiUrls: ['https://us.example'], replicas: ['db-3'] } }, cacheSize: 0, watch: false, logger: silentLogger,
      },
      health: {
        checks: [{ name: 'cache', check: () => undefined, intervalMs: 1, timeoutMs: 1, rise: 1, fall: 1, critical: false, componentType: 'cache', isOutage: () => true, watch: () => () => undefined }],
        http: { host: '0.0.0.0', port: 0 }, shutdown: { signals: ['SIGTERM', 'SIGHUP'], drainDelayMs: 0, exit: false },
      },
      metrics: { prefix: 'fleet_', defaultMetrics: false },
      logger: silentLogger,
    }
    assert.doesNotThrow(() => LoadBalancingModule.forRoot(options))
  })
})

// Issue 15 second review.
describe('LoadBalancingModule refuses what the second review found accepted or failing as TypeError', () => {
  const geo = (endpoints: unknown) => () => validateLoadBalancingOptions({ geo: { database: 'x.mmdb', defaultRegion: 'eu', endpoints } } as LoadBalancingOptions)

  it('refuses device-facing endpoint URLs with credentials, of other schemes, with control characters or without a host', () => {
    const cases: [string, unknown, string][] = [
      ['a broker URL with a password', { eu: { brokers: ['mqtts://ok.example:8883', 'mqtt://u:s3cret@h:1883'] } }, 'geo.endpoints.eu.brokers[1]'],
      ['a broker URL with a user name only', { eu: { brokers: ['mqtt://s3cret@h:1883'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['a broker URL with empty user info', { eu: { brokers: ['mqtt://:@h:1883'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['a javascript: URL', { eu: { brokers: ['javascript:alert(1)'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['a newline', { eu: { brokers: ['mqtt://h\n:1883'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['a space', { eu: { brokers: ['mqtt://h .example:1883'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['an ftp: URL', { eu: { brokers: ['ftp://h'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['no host', { eu: { brokers: ['mqtt:///path'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['not a URL', { eu: { brokers: ['eu.example.com:1883'] } }, 'geo.endpoints.eu.brokers[0]'],
      ['an API URL with a password', { eu: { apiUrls: ['https://u:s3cret@h'] } }, 'geo.endpoints.eu.apiUrls[0]'],
      ['an mqtt: API URL', { eu: { apiUrls: ['mqtt://h'] } }, 'geo.endpoints.eu.apiUrls[0]'],
      ['an API URL with a tab', { eu: { apiUrls: ['https://h/\tx'] } }, 'geo.endpoints.eu.apiUrls[0]'],
    ]
    for (const [what, endpoints, field] of cases) {
      const { field: named, message } = refusal(geo(endpoints))
      assert.equal(named, field, what)
      assert.doesNotMatch(message, /s3cret/, `${what}: the message never quotes the URL`)
    }
    assert.match(refusal(geo({ eu: { brokers: ['mqtt://u:s3cret@h'] } })).message, /no user name or password/)
    assert.doesNotThrow(geo({ eu: { brokers: ['mqtt://h:1883', 'mqtts://h:8883', 'ws://h/mqtt', 'wss://[::1]:443/mqtt'], apiUrls: ['http://h', 'https://h/api?x=1'] } }))
  })

  it('refuses holes in lists, which forEach skipped', () => {
    // eslint-disable-next-line no-sparse-arrays
    assert.equal(fieldOf(() => validateLoadBalancingOptions({ mqtt: { brokers: [, BROKER] } } as LoadBalancingOptions)), 'mqtt.brokers[0]')
    assert.equal(fieldOf(() => validateLoadBalancingOptions({ mqtt: { brokers: new Array(2) } })), 'mqtt.brokers[0]')
  })

  it('names the option whose getter throws, rather than passing the getter\'s own error on', () => {
    const thrower = () => { throw new Error('getter s3cret') }
    assert.equal(fieldOf(() => validateLoadBalancingOptions({ mqtt: { brokers: [BROKER], get keepaliveSeconds() { return thrower() } } })), 'mqtt.keepaliveSeconds')
    const brokers = [BROKER]
    Object.defineProperty(brokers, 0, { get: thrower })
    assert.equal(fieldOf(() => validateLoadBalancingOptions({ mqtt: { brokers } })), 'mqtt.brokers[0]')
    const endpoints = Object.defineProperty({}, 'eu', { get: thrower, enumerable: true })
    assert.equal(fieldOf(geo(endpoints)), 'geo.endpoints.eu')
  })

  it('fromEnv refuses an env that is no object and a value that is no string, naming it', () => {
    assert.equal(fieldOf(() => LoadBalancingModule.fromEnv(null as never)), 'env')
    assert.equal(fieldOf(() => LoadBalancingModule.fromEnv(5 as never)), 'env')
    assert.equal(fieldOf(() => LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_HEALTH_PORT: 80 } as never)), 'ROUTEMQ_HEALTH_PORT')
    assert.equal(fieldOf(() => LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: BROKER, ROUTEMQ_MQTT_CLEAN: true } as never)), 'ROUTEMQ_MQTT_CLEAN')
  })

  it('fromEnv refuses overrides that are no object of options', () => {
    const env = { ROUTEMQ_MQTT_BROKERS: BROKER }
    for (const overrides of [[], 5, 'x', null]) assert.equal(fieldOf(() => LoadBalancingModule.fromEnv(env, overrides as never)), 'overrides', String(overrides))
    assert.doesNotThrow(() => LoadBalancingModule.fromEnv(env, { mqtt: { keepaliveSeconds: 30 } } as never))
  })
})
