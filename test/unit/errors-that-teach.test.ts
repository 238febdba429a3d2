import assert from 'node:assert/strict'
import { inject, injectable } from '../../src/routemq/container.js'
import {
  Application, ConnectionFailedError, InvalidOptionError, MESSAGE_CONTEXT, MessageContext, MessageDispatcher, MigrationFailedError, ReadOnly, Repository,
  Router, UnresolvableDependencyError, loadBalancingOptionsFromEnv, silentLogger, type MessageContext as Context,
} from '../../src/index.js'
import { findUnresolvable } from '../../src/routemq/dependency-check.js'
import { connectionFailureFix } from '../../plugins/kysely/connection-errors.js'
import { inbound, rootContainerForTests } from '../support/inbound-message.js'

const BROKERS = { ROUTEMQ_MQTT_BROKERS: 'mqtt://b1:1883' }

function envError(env: Record<string, string>): InvalidOptionError {
  try {
    loadBalancingOptionsFromEnv(env)
  } catch (error) {
    assert.ok(error instanceof InvalidOptionError, String(error))
    return error
  }
  assert.fail('the environment was accepted')
}

describe('Errors that teach: environment variables', () => {
  it('a malformed number names the variable and the value', () => {
    const error = envError({ ...BROKERS, ROUTEMQ_HEALTH_PORT: 'abc' })
    assert.equal(error.field, 'ROUTEMQ_HEALTH_PORT')
    assert.match(error.message, /must be a number, not "abc"/)
  })

  it('a number out of range names the variable, its value and the option it sets', () => {
    const error = envError({ ...BROKERS, ROUTEMQ_DATABASE_URL: 'postgres://db:5432/app', ROUTEMQ_DATABASE_POOL_SIZE: '0' })
    assert.equal(error.field, 'ROUTEMQ_DATABASE_POOL_SIZE')
    assert.match(error.message, /must be a whole number of at least 1; ROUTEMQ_DATABASE_POOL_SIZE is "0" \(database\.poolSize\)/)
    assert.match(envError({ ...BROKERS, ROUTEMQ_HEALTH_PORT: '99999' }).message, /from 0 to 65535, not "99999"/)
  })

  it('an unknown value lists the values taken', () => {
    const strategy = envError({ ...BROKERS, ROUTEMQ_MQTT_STRATEGY: 'fastest' })
    assert.equal(strategy.field, 'ROUTEMQ_MQTT_STRATEGY')
    assert.match(strategy.message, /'least-latency'.*ROUTEMQ_MQTT_STRATEGY is "fastest" \(mqtt\.strategy\)/)
    assert.match(envError({ ...BROKERS, ROUTEMQ_MQTT_MODE: 'cluster' }).message, /^Option "ROUTEMQ_MQTT_MODE" is invalid: must be one of auto, failover, all, not "cluster"/)
  })

  it('a URL without a scheme says so, quoting it as written', () => {
    const broker = envError({ ROUTEMQ_MQTT_BROKERS: 'localhost:1883' })
    assert.match(broker.message, /has no scheme \("localhost:" was read as one\); start it with mqtt:\/\/.*ROUTEMQ_MQTT_BROKERS is "localhost:1883" \(mqtt\.brokers\[0\]\.url\)/)
    assert.match(envError({ ROUTEMQ_DATABASE_URL: 'localhost:5432/app' }).message, /has no scheme.*write it as postgres:\/\/.*is "localhost:5432\/app"/)
    assert.throws(() => Application.create({ router: new Router(), mqtt: { url: 'localhost:1883' } }), /Option "mqtt\.url" is invalid: has no scheme/)
  })

  it('an unknown variable suggests the one meant', () => {
    const error = envError({ ROUTEMQ_MQTT_BROKER: 'mqtt://b1:1883' })
    assert.equal(error.field, 'ROUTEMQ_MQTT_BROKER')
    assert.match(error.message, /did you mean one of ROUTEMQ_MQTT_BROKERS/)
  })

  it('quotes URLs without their credentials, and never a password', () => {
    const url = envError({ ROUTEMQ_DATABASE_URL: 'mysql://app:s3cret@db:5432/app' })
    assert.equal(url.field, 'ROUTEMQ_DATABASE_URL')
    assert.match(url.message, /ROUTEMQ_DATABASE_URL is "mysql:\/\/db:5432\/app" \(database\.primary\.url\)/)
    assert.doesNotMatch(url.message, /s3cret/)
    const password = envError({ ROUTEMQ_MQTT_BROKERS: 'mqtt://b1:1883', ROUTEMQ_MQTT_PASSWORD: 'x'.repeat(70_000) })
    assert.doesNotMatch(password.message, /xxxx/)
  })

  it('ROUTEMQ_MQTT_CONNECT_TIMEOUT_MS and ROUTEMQ_MQTT_START_TIMEOUT_MS set the broker timeouts, and are checked', () => {
    const options = loadBalancingOptionsFromEnv({ ...BROKERS, ROUTEMQ_MQTT_CONNECT_TIMEOUT_MS: '500', ROUTEMQ_MQTT_START_TIMEOUT_MS: '1500' })
    assert.equal(options.mqtt?.connectTimeoutMs, 500)
    assert.equal(options.mqtt?.startTimeoutMs, 1500)
    assert.match(envError({ ...BROKERS, ROUTEMQ_MQTT_START_TIMEOUT_MS: '0' }).message, /^Option "ROUTEMQ_MQTT_START_TIMEOUT_MS" is invalid: must be a whole number from 1 .*is "0" \(mqtt\.startTimeoutMs\)/)
    assert.equal(envError({ ROUTEMQ_DATABASE_URL: 'postgres://db/app', ROUTEMQ_MQTT_START_TIMEOUT_MS: '1000' }).field, 'ROUTEMQ_MQTT_START_TIMEOUT_MS')
  })
})

describe('Errors that teach: connections and migrations', () => {
  const coded = (code: string, message = code) => Object.assign(new Error(message), { code })

  it('says how to fix each common connection failure', () => {
    assert.match(connectionFailureFix(coded('ECONNREFUSED'))!, /nothing listens there/)
    assert.match(connectionFailureFix(coded('ENOTFOUND'))!, /does not resolve \(DNS\)/)
    assert.match(connectionFailureFix(coded('28P01'))!, /refused the login/)
    assert.match(connectionFailureFix(coded('3D000'))!, /database does not exist/)
    assert.match(connectionFailureFix(new Error('probe got no answer within 700 ms'))!, /no answer in time/)
    assert.equal(connectionFailureFix(coded('42P07', 'relation exists')), undefined)
  })

  it('MigrationFailedError names each server, its cause, the fix and the setting', () => {
    const cause = coded('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432')
    const error = new MigrationFailedError('no primary is reachable', [{ server: '127.0.0.1:5432/app', reason: cause.message, fix: connectionFailureFix(cause) }], 'ROUTEMQ_DATABASE_MIGRATE', cause)
    assert.equal(error.code, 'MIGRATION_FAILED')
    assert.equal(error.cause, cause)
    assert.match(error.message, /ROUTEMQ_DATABASE_MIGRATE\): no primary is reachable\. 127\.0\.0\.1:5432\/app: connect ECONNREFUSED 127\.0\.0\.1:5432 — nothing listens there/)
  })

  it('ConnectionFailedError with several brokers lists each with its own last error', () => {
    const error = new ConnectionFailedError('any of b1, b2', new Error('connect ECONNREFUSED 10.0.0.1:1883'), {
      tried: [{ broker: 'b1', error: new Error('connect ECONNREFUSED 10.0.0.1:1883') }, { broker: 'b2', error: undefined }],
      fix: 'no broker connected within mqtt.startTimeoutMs (1000 ms)',
    })
    assert.equal(error.tried.length, 2)
    assert.match(error.message, /within mqtt\.startTimeoutMs \(1000 ms\)\. Tried b1 \(connect ECONNREFUSED 10\.0\.0\.1:1883\); b2 \(no attempt finished\)/)
  })
})

class Helper {
  constructor(readonly name: string) {}
}

/** No decorator: tsyringe cannot tell what its constructor takes. */
class Unmarked {
  constructor(readonly helper: Helper) {}
}

interface Clock { now(): number }

@injectable()
class TakesInterface {
  constructor(readonly clock: Clock) {}
}

@injectable()
class TakesToken {
  constructor(@inject('errors-test-token') readonly value: string) {}
}

@injectable()
class Controller {
  constructor(@inject(MESSAGE_CONTEXT) readonly ctx: Context) {}
  handle(): void {}
}

@injectable()
class ControllerNeedingUnmarked {
  constructor(readonly unmarked: Unmarked) {}
  handle(): void {}
}

describe('Errors that teach: classes the container cannot build', () => {
  it('finds a class not marked injectable and a parameter with no token, without building them, and lets a token be registered later', () => {
    const container = rootContainerForTests()
    const unmarked = findUnresolvable(Unmarked, container)
    assert.ok(unmarked instanceof UnresolvableDependencyError)
    assert.equal(unmarked.code, 'UNRESOLVABLE_DEPENDENCY')
    assert.match(unmarked.message, /^Cannot build "Unmarked": it is not marked injectable.*Add @Repository\(\) above "class Unmarked".*@injectable\(\)/)
    assert.match(findUnresolvable(ControllerNeedingUnmarked, container)!.message, /"ControllerNeedingUnmarked → Unmarked"/)
    assert.match(findUnresolvable(TakesInterface, container)!.message, /parameter #0 is typed Object.*@InjectKysely\(\).*@inject\(TOKEN\)/)
    // A token nothing registers yet is not refused: a middleware may register it for each message.
    assert.equal(findUnresolvable(TakesToken, container), undefined)
    assert.equal(findUnresolvable(TakesToken, undefined), undefined)
    container.register('errors-test-token', { useValue: 'v' })
    assert.equal(findUnresolvable(TakesToken, container), undefined)
    assert.equal(findUnresolvable(Controller, container, [MESSAGE_CONTEXT]), undefined)
  })

  it('app.start() fails naming the route whose controller cannot be built, before connecting', async () => {
    let connected = false
    const transport = {
      connected: false, persistentSession: false,
      connect: async () => void (connected = true), subscribe: async () => {}, unsubscribe: async () => {}, publish: async () => {}, close: async () => {},
    }
    const router = new Router().on('ok/{id}', [Controller, 'handle']).on('devices/{id}/x', [ControllerNeedingUnmarked, 'handle'])
    const app = Application.create({ router, transport: transport, logger: silentLogger })
    await assert.rejects(app.start(), (error: unknown) => {
      assert.ok(error instanceof UnresolvableDependencyError)
      assert.match(error.message, /^Cannot build "ControllerNeedingUnmarked → Unmarked" for route "devices\/\{id\}\/x": it is not marked injectable/)
      return true
    })
    assert.equal(connected, false)
  })

  it("a handler's resolve names the class and keeps tsyringe's error as the cause; under 'ack' the message is withheld when the session outlives the connection", async () => {
    const container = rootContainerForTests()
    const seen: unknown[] = []
    const router = new Router().on('devices/{id}', (ctx) => {
      try {
        return ctx.container.resolve(Unmarked)
      } catch (error) {
        seen.push(error)
        throw error
      }
    }, { qos: 1 })
    const dispatcher = new MessageDispatcher({ router, container, publish: async () => {}, logger: silentLogger, onError: 'ack', maxInFlight: 8, maxQueued: 8, ordering: 'topic', keepsSession: () => true })
    const message = inbound('devices/7', '{}')
    dispatcher.receive(message)
    assert.equal(await message.settled, false)
    const error = seen[0]
    assert.ok(error instanceof UnresolvableDependencyError)
    assert.match(error.message, /Cannot build "Unmarked"/)
    assert.match(String((error.cause as Error).message), /TypeInfo not known for "Unmarked"/)
    assert.equal(dispatcher.stats.failed, 1)
    assert.equal(dispatcher.stats.withheld, 1)
    // With a clean session nothing would get it again: 'ack' holds, rather than a broker in-flight slot held for nothing.
    const clean = new MessageDispatcher({ router, container, publish: async () => {}, logger: silentLogger, onError: 'ack', maxInFlight: 8, maxQueued: 8, ordering: 'topic', keepsSession: () => false })
    const acked = inbound('devices/8', '{}')
    clean.receive(acked)
    assert.equal(await acked.settled, true)
    assert.equal(clean.stats.withheld, 0)
    // Any other failure still follows 'ack'.
    const other = new MessageDispatcher({ router: new Router().on('x', () => { throw new Error('boom') }), container, publish: async () => {}, logger: silentLogger, onError: 'ack', maxInFlight: 8, maxQueued: 8, ordering: 'topic' })
    const plain = inbound('x', '{}')
    other.receive(plain)
    assert.equal(await plain.settled, true)
  })

  it('a token nothing registers, met at message time, is named with the fix; one a middleware registers resolves', async () => {
    const container = rootContainerForTests()
    const seen: unknown[] = []
    const resolveIt = (ctx: { container: { resolve: (token: typeof TakesToken) => unknown } }): unknown => {
      try {
        return ctx.container.resolve(TakesToken)
      } catch (error) {
        seen.push(error)
        throw error
      }
    }
    const router = new Router()
      .on('bare', resolveIt, { qos: 1 })
      .on('registered', resolveIt, { qos: 1, middleware: [(ctx, next) => { ctx.container.register('errors-test-token', { useValue: 'v' }); return next(ctx) }] })
    const dispatcher = new MessageDispatcher({ router, container, publish: async () => {}, logger: silentLogger, onError: 'ack', maxInFlight: 8, maxQueued: 8, ordering: 'topic' })
    const bare = inbound('bare', '{}')
    dispatcher.receive(bare)
    await bare.settled
    assert.ok(seen[0] instanceof UnresolvableDependencyError, String(seen[0]))
    assert.match((seen[0] as Error).message, /nothing registers the token errors-test-token.*ctx\.container\.register/)
    const registered = inbound('registered', '{}')
    dispatcher.receive(registered)
    assert.equal(await registered.settled, true)
    assert.equal(dispatcher.stats.handled, 1)
  })

  it('a parameter without type metadata (emitDecoratorMetadata off) is named', () => {
    class NoMetadata {
      constructor(readonly first: string, readonly second: Helper) {}
    }
    inject('errors-test-token')(NoMetadata, undefined, 0)
    injectable()(NoMetadata)
    assert.match(findUnresolvable(NoMetadata, undefined)!.message, /^Cannot build "NoMetadata": constructor parameter #1 has no type metadata \(is "emitDecoratorMetadata" on\?\)/)
  })

  it('a resolve that fails for another reason (a factory that throws) is passed on as it is', () => {
    const container = rootContainerForTests()
    container.register('failing', { useFactory: () => { throw new InvalidOptionError('KYSELY', 'is not configured') } })
    const ctx = new MessageContext({
      topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: undefined, broker: 'b',
      route: { pattern: 't', subscription: 't', name: undefined }, container, publish: async () => {},
    })
    assert.throws(() => ctx.container.resolve('failing'), InvalidOptionError)
  })

  it('decorators run as standard (TC39) ones say which tsconfig flags to set', () => {
    class Target {}
    assert.throws(() => (Repository() as (target: unknown, context: unknown) => void)(Target, { kind: 'class', name: 'Target' }), (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError)
      assert.equal(error.field, 'compilerOptions.experimentalDecorators')
      assert.match(error.message, /"experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig\.json/)
      return true
    })
    assert.throws(() => (ReadOnly() as unknown as (value: unknown, context: unknown) => void)(() => {}, { kind: 'method', name: 'find' }), /experimentalDecorators/)
  })
})
