import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Kysely } from 'kysely'
import { connectAsync } from 'mqtt'
import {
  Application, ConnectionFailedError, InjectKysely, InvalidOptionError, LoadBalancingModule, MigrationFailedError, Repository, Router,
  UnresolvableDependencyError, silentLogger, type MessageContext,
} from '../../src/index.js'
import { freePort, startTopology, type Topology } from '../../src/testing/index.js'
import { pollUntil } from '../support/poll-until.js'

class Helper {
  constructor(readonly name: string) {}
}

/** The mistake: no @Repository() / @injectable(), so tsyringe cannot tell what its constructor takes. */
class Unmarked {
  constructor(readonly helper: Helper) {}
}

/** Correct in itself; only the app below leaves the database out. */
@Repository()
class Readings {
  constructor(@InjectKysely() readonly db: Kysely<unknown>) {}
}

describe('Errors that teach, against the launcher’s broker and database', function () {
  this.timeout(60_000)
  let topology: Topology
  const apps: Application[] = []

  before(async () => {
    topology = await startTopology({ brokers: 1, postgres: true })
  })
  afterEach(async () => {
    while (apps.length) await apps.pop()!.stop().catch(() => undefined)
  })
  after(async () => {
    await topology?.stop()
  })

  it('a message whose handler cannot build its class is not acknowledged: the fixed app gets it again and handles it', async () => {
    const broker = topology.brokers[0]!.url
    const errors: unknown[] = []
    const mqtt = { url: broker, clientId: 'errors-unresolvable', clean: false }
    const broken = Application.create({
      router: new Router().on('devices/{id}/telemetry', (ctx) => {
        try {
          return ctx.container.resolve(Unmarked)
        } catch (error) {
          errors.push(error)
          throw error
        }
      }, { qos: 1 }),
      mqtt, logger: silentLogger,
    })
    apps.push(broken)
    await broken.start()
    const device = await connectAsync(broker, { clientId: 'errors-device' })
    await device.publishAsync('devices/7/telemetry', '{"celsius":21}', { qos: 1 })
    await pollUntil(() => broken.stats.failed === 1, { timeoutMs: 10_000, everyMs: 20 })
    assert.ok(errors[0] instanceof UnresolvableDependencyError)
    assert.match((errors[0] as Error).message, /Cannot build "Unmarked": it is not marked injectable.*Add @Repository\(\)/)
    assert.equal(broken.stats.withheld, 1)
    assert.equal(broken.stats.handled, 0)
    await broken.stop()
    apps.pop()

    let delivered!: (what: string) => void
    const handled = new Promise<string>((resolve) => (delivered = resolve))
    const fixed = Application.create({
      router: new Router().on('devices/{id}/telemetry', (ctx: MessageContext) => delivered(`${ctx.params.id}:${ctx.raw.toString()}`), { qos: 1 }),
      mqtt, logger: silentLogger,
    })
    apps.push(fixed)
    await fixed.start()
    assert.equal(await handled, '7:{"celsius":21}')
    await device.endAsync()
  })

  it('a repository resolved by an app configured without a database names the variable to set, and its message is withheld', async () => {
    const broker = topology.brokers[0]!.url
    let failed!: (error: unknown) => void
    const failure = new Promise<unknown>((resolve) => (failed = resolve))
    const app = Application.create({
      router: new Router().on('errors/no-database', (ctx) => {
        try {
          return ctx.container.resolve(Readings)
        } catch (error) {
          failed(error)
          throw error
        }
      }, { qos: 1 }),
      logger: silentLogger,
      modules: [LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: broker, ROUTEMQ_MQTT_MODE: 'all', ROUTEMQ_MQTT_CLIENT_ID: 'errors-no-database', ROUTEMQ_HEALTH_ENABLED: 'false' })],
    })
    apps.push(app)
    await app.start()
    const device = await connectAsync(broker, { clientId: 'errors-device-2' })
    await device.publishAsync('errors/no-database', '{}', { qos: 1 })
    const error = await failure
    assert.ok(error instanceof UnresolvableDependencyError, String(error))
    assert.match(error.message, /^Cannot build "Readings → routemq-load-balancing\.Kysely": it is not configured \(no database in LoadBalancingModule's options\)\. Set ROUTEMQ_DATABASE_URL/)
    await pollUntil(() => app.stats.withheld === 1, { timeoutMs: 10_000, everyMs: 20 })
    assert.equal(app.stats.handled, 0)
    await device.endAsync()
  })

  it('a forgotten @Repository() fails app.start() naming the class and the fix, before any message', async () => {
    const script = fileURLToPath(new URL('../support/forgotten-repository-app.js', import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, [script, topology.brokers[0]!.url], { timeout: 30_000 })
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as { name: string; code: string; message: string }
    assert.equal(result.name, 'UnresolvableDependencyError')
    assert.equal(result.code, 'UNRESOLVABLE_DEPENDENCY')
    assert.match(result.message, /^Cannot build "Readings": it is not marked injectable.*Add @Repository\(\) above "class Readings"/)
  })

  it('migrations with no database reachable name the server, the cause and the fix, never the password', async () => {
    const port = await freePort()
    const app = Application.create({
      router: new Router(), logger: silentLogger, mqtt: { url: topology.brokers[0]!.url },
      modules: [LoadBalancingModule.fromEnv({ ROUTEMQ_DATABASE_URL: `postgres://app:s3cret@127.0.0.1:${port}/app`, ROUTEMQ_DATABASE_MIGRATE: 'true', ROUTEMQ_HEALTH_ENABLED: 'false' })],
    })
    apps.push(app)
    await assert.rejects(app.start(), (error: unknown) => {
      assert.ok(error instanceof MigrationFailedError)
      assert.equal(error.code, 'MIGRATION_FAILED')
      assert.match(error.message, new RegExp(`^Could not run the migrations \\(ROUTEMQ_DATABASE_MIGRATE\\): no primary is reachable\\. 127\\.0\\.0\\.1:${port}/app: connect ECONNREFUSED .* — nothing listens there`))
      assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED')
      assert.doesNotMatch(error.message, /s3cret/)
      return true
    })
  })

  it('migrations on a database that does not exist say so, with the server', async () => {
    const url = new URL(topology.primary!.url)
    url.pathname = '/no_such_database'
    const app = Application.create({
      router: new Router(), logger: silentLogger, mqtt: { url: topology.brokers[0]!.url },
      modules: [LoadBalancingModule.forRoot({ database: { primary: url.href, migrate: true }, health: false })],
    })
    apps.push(app)
    await assert.rejects(app.start(), (error: unknown) => {
      assert.ok(error instanceof MigrationFailedError)
      assert.match(error.message, /^Could not run the migrations \(database\.migrate\): no primary is reachable\. .*\/no_such_database: .*does not exist — that database does not exist on the server/)
      return true
    })
  })

  it('a dead broker URL fails within ROUTEMQ_MQTT_START_TIMEOUT_MS, naming the broker and its ECONNREFUSED', async () => {
    const port = await freePort()
    const app = Application.create({
      router: new Router(), logger: silentLogger,
      modules: [LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: `mqtt://127.0.0.1:${port}`, ROUTEMQ_MQTT_MODE: 'all', ROUTEMQ_MQTT_START_TIMEOUT_MS: '1000', ROUTEMQ_HEALTH_ENABLED: 'false' })],
    })
    apps.push(app)
    const started = Date.now()
    await assert.rejects(app.start(), (error: unknown) => {
      assert.ok(error instanceof ConnectionFailedError, String(error))
      assert.match(error.message, new RegExp(`within mqtt\\.startTimeoutMs \\(1000 ms.*Tried 127\\.0\\.0\\.1:${port} \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\)`))
      assert.equal(error.tried.length, 1)
      return true
    })
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`)
  })

  it('a health port taken fails the start naming ROUTEMQ_HEALTH_PORT and its value', async () => {
    const taken: Server = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as { port: number }).port
    try {
      const app = Application.create({
        router: new Router(), logger: silentLogger,
        modules: [LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: topology.brokers[0]!.url, ROUTEMQ_MQTT_MODE: 'all', ROUTEMQ_HEALTH_PORT: String(port) })],
      })
      apps.push(app)
      await assert.rejects(app.start(), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError)
        assert.equal(error.field, 'ROUTEMQ_HEALTH_PORT')
        assert.match(error.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\); choose another port; ROUTEMQ_HEALTH_PORT is "${port}" \\(health\\.http\\.port\\)`))
        return true
      })
    } finally {
      await new Promise((resolve) => taken.close(resolve))
    }
  })
})
