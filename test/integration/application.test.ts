import assert from 'node:assert/strict'
import { connectAsync, type MqttClient } from 'mqtt'
import {
  Application, ConnectionFailedError, DefaultMqttTransport, Router, silentLogger, type MessageContext, type RouteMqModule,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { ChildApp } from '../support/child-app.js'
import { rootContainerForTests } from '../support/inbound-message.js'

/** Resolves with the values pushed once `count` have arrived. */
function collector<T>(count: number) {
  const values: T[] = []
  let resolve!: (values: T[]) => void
  const done = new Promise<T[]>((r) => (resolve = r))
  return {
    done,
    values,
    push(value: T) {
      values.push(value)
      if (values.length === count) resolve(values)
    },
  }
}

describe('Application on a real Mosquitto', function () {
  let topology: Topology
  let publisher: MqttClient
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ brokers: 1 })
    publisher = await connectAsync(topology.brokers[0]!.url, { clientId: 'test-publisher', protocolVersion: 5 })
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!()
  })
  after(async () => {
    await publisher?.endAsync()
    await topology?.stop()
  })

  function app(router: Router, extra: Partial<Parameters<typeof Application.create>[0]> = {}): Application {
    const created = Application.create({ router, logger: silentLogger, mqtt: { url: topology.brokers[0]!.url }, ...extra })
    cleanup.push(() => created.stop())
    return created
  }

  it('receives, routes by {param} through group then route middleware, and handles every message', async () => {
    const handled = collector<string>(3)
    const trace: string[] = []
    const router = new Router()
    router.group({ prefix: 'fleet/{region}', middleware: [(ctx, next) => { trace.push('group'); return next(ctx) }] }, (fleet) => {
      fleet.on('devices/{id}/telemetry', (ctx) => {
        const body = ctx.payload as { seq: number }
        handled.push(`${ctx.params.region}:${ctx.params.id}:${body.seq}`)
      }, { qos: 1, middleware: [(ctx, next) => { trace.push('route'); return next(ctx) }] })
    })
    const application = app(router)
    await application.start()
    for (let seq = 1; seq <= 3; seq++) {
      await publisher.publishAsync(`fleet/eu/devices/d${seq}/telemetry`, JSON.stringify({ seq }), { qos: 1 })
    }
    assert.deepEqual((await handled.done).sort(), ['eu:d1:1', 'eu:d2:2', 'eu:d3:3'])
    assert.deepEqual(trace, ['group', 'route', 'group', 'route', 'group', 'route'])
    assert.equal(application.transport?.connected, true)
    await application.stop()
    assert.equal(application.stats.handled, 3)
    assert.equal(application.stats.failed, 0)
  })

  it('lets a handler publish at QoS 1 and await the broker while its own message is unacknowledged', async () => {
    const replies = collector<string>(1)
    const listener = await connectAsync(topology.brokers[0]!.url, { clientId: 'reply-listener' })
    cleanup.push(() => listener.endAsync())
    listener.on('message', (_topic, payload) => replies.push(payload.toString()))
    await listener.subscribeAsync('replies/#', { qos: 1 })
    const router = new Router().on('requests/{id}', async (ctx: MessageContext) => {
      await ctx.publish(`replies/${ctx.params.id}`, { answer: 42 }, { qos: 1 })
    }, { qos: 1 })
    await app(router).start()
    await publisher.publishAsync('requests/r1', 'q', { qos: 1 })
    assert.deepEqual(await replies.done, ['{"answer":42}'])
  })

  it('handles a message once when overlapping routes both subscribe to it (MQTT 5 subscription identifiers)', async () => {
    const seen: string[] = []
    const handled = collector<string>(2)
    const router = new Router()
      .on('alerts/+', (ctx) => { seen.push(`wildcard ${ctx.topic}`); handled.push(ctx.topic) }, { qos: 1 })
      .on('alerts/fire', (ctx) => { seen.push(`specific ${ctx.topic}`); handled.push(ctx.topic) }, { qos: 1 })
    const application = app(router)
    await application.start()
    await publisher.publishAsync('alerts/fire', 'x', { qos: 1 })
    await publisher.publishAsync('alerts/flood', 'x', { qos: 1 })
    await handled.done
    await application.stop()
    assert.deepEqual(seen.sort(), ['specific alerts/fire', 'wildcard alerts/flood'])
    assert.equal(application.stats.duplicateCopies, 1, 'Mosquitto sent a second copy of alerts/fire for alerts/+')
  })

  it('keeps reading acknowledgements while handlers fill maxInFlight and await their own QoS 1 publishes', async () => {
    const replies = collector<string>(6)
    const listener = await connectAsync(topology.brokers[0]!.url, { clientId: 'window-listener' })
    cleanup.push(() => listener.endAsync())
    listener.on('message', (topic) => replies.push(topic))
    await listener.subscribeAsync('answers/#', { qos: 1 })
    const router = new Router().on('asks/{n}', async (ctx: MessageContext) => {
      await ctx.publish(`answers/${ctx.params.n}`, 'ok', { qos: 1 })
    }, { qos: 1 })
    const application = app(router, { maxInFlight: 2, mqtt: { url: topology.brokers[0]!.url, keepaliveSeconds: 2 } })
    await application.start()
    for (let n = 1; n <= 6; n++) await publisher.publishAsync(`asks/${n}`, 'q', { qos: n % 2 ? 0 : 1 })
    assert.equal((await replies.done).length, 6)
    await application.stop()
    assert.equal(application.stats.handled, 6)
  })

  it('keeps handling after 25 poison messages on a 65 535-byte topic whose dl/<topic> is too long to publish', async () => {
    const deadLetters = collector<{ topic: string; original: unknown }>(25)
    const listener = await connectAsync(topology.brokers[0]!.url, { clientId: 'poison-listener', protocolVersion: 5 })
    cleanup.push(() => listener.endAsync())
    listener.on('message', (topic, _payload, packet) => deadLetters.push({ topic, original: packet.properties?.userProperties?.['routemq-original-topic'] }))
    await listener.subscribeAsync('dl/#', { qos: 1 })
    const good = collector<string>(1)
    const router = new Router()
      .on('big/#', () => assert.fail('a malformed body never reaches the handler'), { qos: 1, payload: 'json', onError: { deadLetter: 'dl' } })
      .on('ok/{n}', (ctx) => good.push(ctx.params.n), { qos: 1 })
    const application = app(router)
    await application.start()
    const topic = `big/${'x'.repeat(65_535 - 4)}`
    for (let n = 0; n < 25; n++) await publisher.publishAsync(topic, 'not json', { qos: 1 })
    await publisher.publishAsync('ok/1', '{}', { qos: 1 })
    assert.deepEqual(await good.done, ['1'])
    const letters = await deadLetters.done
    assert.ok(letters.every((letter) => letter.topic === 'dl' && letter.original === topic))
    await application.stop()
    assert.equal(application.stats.malformed, 25)
    assert.equal(application.stats.deadLettered, 25)
  })

  it("refuses a handler's publish with a NUL in a user property instead of losing the connection over it", async () => {
    const outcomes = collector<string>(2)
    const router = new Router().on('hello/{id}', async (ctx: MessageContext) => {
      const fw = (ctx.payload as { fw: string }).fw
      await ctx.publish(`welcome/${ctx.params.id}`, { ok: true }, { qos: 1, properties: { userProperties: { fw } } })
        .then(() => outcomes.push(`${ctx.params.id}:sent`), (error: Error & { field?: string }) => outcomes.push(`${ctx.params.id}:${error.name}:${error.field}`))
    }, { qos: 1 })
    const application = app(router)
    await application.start()
    await publisher.publishAsync('hello/7', JSON.stringify({ fw: '1.0\u0000' }), { qos: 1 })
    await publisher.publishAsync('hello/8', JSON.stringify({ fw: '1.0' }), { qos: 1 })
    assert.deepEqual((await outcomes.done).sort(), ['7:InvalidOptionError:publish.properties.userProperties.fw', '8:sent'])
    assert.equal(application.transport?.connected, true)
    await application.stop()
  })

  it('starts a second application on the same user container after the first stopped', async () => {
    const container = rootContainerForTests()
    const handled = collector<string>(1)
    const first = app(new Router().on('reuse', () => {}), { container })
    await first.start()
    await first.stop()
    const second = app(new Router().on('reuse', (ctx) => handled.push(ctx.topic), { qos: 1 }), { container })
    await second.start()
    await publisher.publishAsync('reuse', 'x', { qos: 1 })
    assert.deepEqual(await handled.done, ['reuse'])
  })

  it('receives QoS 2 messages and completes them after the handler', async () => {
    const handled = collector<string>(2)
    const router = new Router().on('exact/{n}', (ctx) => handled.push(ctx.params.n), { qos: 2 })
    const application = app(router)
    await application.start()
    await publisher.publishAsync('exact/1', 'a', { qos: 2 })
    await publisher.publishAsync('exact/2', 'b', { qos: 2 })
    assert.deepEqual((await handled.done).sort(), ['1', '2'])
    await application.stop()
    assert.equal(application.stats.handled, 2)
  })

  it('redelivers a QoS 1 message whose handler was still running when the app was killed', async function () {
    const url = topology.brokers[0]!.url
    const clientId = 'session-app-1'
    const first = ChildApp.start('session-app.js', [url, clientId, 'hang'])
    cleanup.push(() => first.signal('SIGKILL'))
    await first.next((e) => e.event === 'ready')
    await publisher.publishAsync('jobs/42', 'resize image 42', { qos: 1 })
    await first.next((e) => e.event === 'handling' && e.id === '42')
    await first.signal('SIGKILL')

    const second = ChildApp.start('session-app.js', [url, clientId, 'finish'])
    cleanup.push(() => second.signal('SIGKILL'))
    const redelivered = await second.next((e) => e.event === 'handling')
    assert.equal(redelivered.id, '42')
    assert.equal(redelivered.body, 'resize image 42')
    assert.equal(redelivered.dup, true)
    await second.next((e) => e.event === 'handled' && e.id === '42')
    await second.next((e) => e.event === 'ready')
    assert.equal(await second.signal('SIGTERM'), 0, `graceful stop failed: ${second.stderr}`)

    // The second app acknowledged it after handling: a third start gets only the new job.
    const third = ChildApp.start('session-app.js', [url, clientId, 'finish'])
    cleanup.push(() => third.signal('SIGKILL'))
    await third.next((e) => e.event === 'ready')
    await publisher.publishAsync('jobs/43', 'resize image 43', { qos: 1 })
    await third.next((e) => e.event === 'handled' && e.id === '43')
    assert.deepEqual(third.events.filter((e) => e.event === 'handling').map((e) => e.id), ['43'])
  })

  it('stops gracefully: running handlers finish, then modules stop in reverse order', async () => {
    const lifecycle: string[] = []
    const module = (name: string): RouteMqModule => ({
      name,
      register: () => lifecycle.push(`register ${name}`),
      start: () => { lifecycle.push(`start ${name}`) },
      stop: () => { lifecycle.push(`stop ${name}`) },
    })
    const started = collector<void>(1)
    let release!: () => void
    const router = new Router().on('slow', async () => {
      started.push()
      await new Promise<void>((r) => (release = r))
      lifecycle.push('handler finished')
    }, { qos: 1 })
    const application = app(router, { modules: [module('db'), module('health')] })
    await application.start()
    await publisher.publishAsync('slow', 'x', { qos: 1 })
    await started.done
    const stopping = application.stop()
    lifecycle.push('stop requested')
    setImmediate(() => release())
    assert.deepEqual(await stopping, { drained: true, abandoned: 0 })
    assert.deepEqual(lifecycle, [
      'register db', 'register health', 'start db', 'start health',
      'stop requested', 'handler finished', 'stop health', 'stop db',
    ])
    assert.equal(application.state, 'stopped')
    await assert.rejects(application.start(), /create a new Application/)
  })

  it('stops within its time bounds when the broker died with a publish in flight', async () => {
    const broker = topology.brokers[0]!
    const application = app(new Router().on('x', () => {}), {
      drainTimeoutMs: 500,
      mqtt: { url: broker.url, closeTimeoutMs: 500, reconnectPeriodMs: 200 },
    })
    await application.start()
    await broker.kill()
    try {
      const inFlight = application.publish('orphan', 'x', { qos: 1 })
      const outcome = inFlight.then(() => 'delivered', () => 'rejected')
      await application.stop()
      assert.equal(application.state, 'stopped')
      assert.equal(await outcome, 'rejected', 'a publish the broker never acknowledged is not reported as sent')
    } finally {
      await broker.restart()
      publisher.reconnect()
      await new Promise((resolve) => publisher.once('connect', resolve))
    }
  })

  it('fails to start with ConnectionFailedError naming the broker without credentials, and starts on retry', async () => {
    const broker = topology.brokers[0]!
    const url = `mqtt://operator:hunter2@${broker.host}:${broker.port}`
    const handled = collector<string>(1)
    const application = app(new Router().on('retry/{n}', (ctx) => handled.push(ctx.params.n), { qos: 1 }), {
      mqtt: { url, connectTimeoutMs: 1500 },
    })
    await broker.kill()
    try {
      const error = await application.start().then(() => undefined, (e: unknown) => e)
      assert.ok(error instanceof ConnectionFailedError, `got ${String(error)}`)
      assert.equal(error.code, 'CONNECTION_FAILED')
      assert.match(error.message, new RegExp(`mqtt://${broker.host}:${broker.port}`))
      assert.doesNotMatch(error.message, /hunter2|operator/)
      assert.equal(application.state, 'created')
    } finally {
      await broker.restart()
      publisher.reconnect()
      await new Promise((resolve) => publisher.once('connect', resolve))
    }
    await application.start()
    await publisher.publishAsync('retry/1', 'x', { qos: 1 })
    assert.deepEqual(await handled.done, ['1'])
  })

  it('starts on retry with the same explicit transport after a module failed to start', async () => {
    const handled = collector<string>(1)
    const transport = new DefaultMqttTransport({ url: topology.brokers[0]!.url, clientId: 'explicit-retry', logger: silentLogger })
    let attempts = 0
    const flaky: RouteMqModule = {
      register() {},
      start() {
        if (++attempts === 1) throw new Error('not yet')
      },
    }
    const application = Application.create({
      router: new Router().on('explicit/{n}', (ctx) => handled.push(ctx.params.n), { qos: 1 }),
      transport, modules: [flaky], logger: silentLogger,
    })
    cleanup.push(() => application.stop())
    await assert.rejects(application.start(), /not yet/)
    await application.start()
    await publisher.publishAsync('explicit/1', 'x', { qos: 1 })
    assert.deepEqual(await handled.done, ['1'])
  })
})
