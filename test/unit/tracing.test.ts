import assert from 'node:assert/strict'
import { SpanKind, SpanStatusCode } from '@opentelemetry/api'
import FakeTimers from '@sinonjs/fake-timers'
import {
  Application, Router, silentLogger, TRACER_NAME, type MessageContext, type MessageReceiver, type Next, type PublishOptions,
} from '../../src/index.js'
import { operationOf } from '../../plugins/kysely/query-tracing.js'
import { PrimaryTracing } from '../../plugins/kysely/primary-tracing.js'
import type { PgBackend } from '../../plugins/kysely/pg-backend.js'
import { BrokerPoolTracing } from '../../plugins/mqtt/failover-tracing.js'
import { inbound } from '../support/inbound-message.js'
import { parentOf, spans, traceparent } from '../support/in-memory-tracing.js'

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const DEVICE_SPAN = '00f067aa0ba902b7'

/** An application on a transport that records publishes and lets the test deliver messages. */
async function started(router: Router) {
  const published: { topic: string; options: PublishOptions | undefined }[] = []
  let receive!: MessageReceiver
  const transport = {
    connected: true,
    persistentSession: false,
    connect: async (receiver: MessageReceiver) => void (receive = receiver),
    subscribe: async () => {},
    unsubscribe: async () => {},
    publish: async (topic: string, _payload: unknown, options?: PublishOptions) => void published.push({ topic, options }),
    close: async () => {},
  }
  const app = Application.create({ router, transport, logger: silentLogger })
  await app.start()
  return { app, published, deliver: (message: Parameters<MessageReceiver>[0]) => receive(message) }
}

function withTraceparent(value: string, extra: Record<string, string> = {}) {
  return { properties: { userProperties: { traceparent: value, ...extra } } }
}

describe('Tracing of messages and publishes (kernel, SDK in-memory exporter)', () => {
  before(() => spans.start())
  after(() => spans.stop())
  beforeEach(() => spans.reset())

  it("continues the sender's trace: CONSUMER span, nested middleware and handler spans, a PRODUCER span whose traceparent goes out", async () => {
    async function audit(_ctx: MessageContext, next: Next) {
      return next(_ctx)
    }
    const router = new Router()
    router.group({ prefix: 'devices/{id}', middleware: [audit] }, (devices) => {
      devices.on('telemetry', async (ctx) => {
        await ctx.publish(`devices/${ctx.params.id}/ack`, { ok: true }, { qos: 1 })
      }, { qos: 1, shared: 'workers', name: 'telemetry', middleware: [(ctx, next) => next(ctx)] })
    })
    const { app, published, deliver } = await started(router)
    const message = inbound('devices/7/telemetry', '{"celsius":21}', withTraceparent(traceparent(TRACE_ID, DEVICE_SPAN), { tracestate: 'vendor=1' }))
    deliver(message)
    assert.equal(await message.settled, true)
    const consumer = await spans.waitFor((s) => s.kind === SpanKind.CONSUMER)
    await app.stop()
    const all = spans.finished()

    assert.equal(consumer.name, 'process devices/{id}/telemetry')
    assert.equal(consumer.instrumentationScope.name, TRACER_NAME)
    assert.equal(consumer.spanContext().traceId, TRACE_ID, "the device's trace goes on")
    assert.equal(consumer.parentSpanContext?.spanId, DEVICE_SPAN)
    assert.equal(consumer.parentSpanContext?.isRemote, true)
    assert.deepEqual(consumer.attributes, {
      'messaging.system': 'mqtt',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.template': 'devices/{id}/telemetry',
      'messaging.consumer.group.name': 'workers',
      'routemq.route.name': 'telemetry',
      'messaging.destination.name': 'devices/7/telemetry',
      'messaging.message.body.size': 14,
      'routemq.mqtt.qos': 1,
      'routemq.broker': 'test',
    })
    assert.equal(consumer.status.code, SpanStatusCode.UNSET)

    const audited = all.find((s) => s.name === 'middleware audit')!
    const second = all.find((s) => s.name === 'middleware #2')!
    const handler = all.find((s) => s.name === 'handler')!
    const producer = all.find((s) => s.kind === SpanKind.PRODUCER)!
    assert.equal(parentOf(audited, all), consumer, 'the group middleware runs in the message span')
    assert.equal(parentOf(second, all), audited, 'the route middleware inside the group one')
    assert.equal(parentOf(handler, all), second)
    assert.equal(parentOf(producer, all), handler, "the handler's publish is its child")
    assert.equal(producer.name, 'publish')
    assert.equal(producer.attributes['messaging.destination.name'], 'devices/7/ack')
    assert.equal(producer.attributes['messaging.operation.type'], 'send')
    assert.equal(producer.attributes['messaging.message.body.size'], Buffer.byteLength('{"ok":true}'))

    assert.equal(published.length, 1)
    const sent = published[0]!.options!.properties!.userProperties!
    assert.equal(sent.traceparent, traceparent(TRACE_ID, producer.spanContext().spanId), 'the reply carries the PRODUCER span as its parent')
    assert.equal(sent.tracestate, 'vendor=1', 'the tracestate goes on with it')
    assert.equal(published[0]!.options!.via, 'test', 'the rest of the options are kept')
  })

  it('starts a new trace for a message without traceparent, and marks a failed handler and its message span as errors', async () => {
    const router = new Router().on('jobs/{n}', () => {
      throw new TypeError('bad job')
    }, { qos: 1 })
    const { app, deliver } = await started(router)
    const message = inbound('jobs/1', 'x')
    deliver(message)
    await message.settled
    const consumer = await spans.waitFor((s) => s.kind === SpanKind.CONSUMER)
    await app.stop()
    assert.equal(consumer.parentSpanContext, undefined, 'a root span')
    assert.equal(consumer.status.code, SpanStatusCode.ERROR)
    assert.equal(consumer.status.message, 'bad job')
    assert.equal(consumer.attributes['error.type'], 'TypeError')
    assert.equal(consumer.events[0]?.name, 'exception')
    const handler = spans.finished().find((s) => s.name === 'handler')!
    assert.equal(handler.status.code, SpanStatusCode.ERROR)
  })

  it('leaves no unhandled rejection when a middleware does not await next() and the handler fails while traced', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      const router = new Router().on('jobs/{n}', async () => {
        await Promise.resolve()
        throw new Error('late failure, password=hunter2')
      }, { qos: 1, middleware: [(ctx, next) => void next(ctx)] })
      const { app, deliver } = await started(router)
      const message = inbound('jobs/2', 'x', withTraceparent(traceparent(TRACE_ID, DEVICE_SPAN)))
      deliver(message)
      await message.settled
      const handler = await spans.waitFor((s) => s.name === 'handler')
      await app.stop()
      // Node reports unhandled rejections after the microtasks of the turn they happened in.
      await new Promise((resolve) => setImmediate(resolve))
      assert.deepEqual(unhandled, [])
      assert.equal(handler.status.code, SpanStatusCode.ERROR)
      // Span errors are scrubbed as log lines are.
      assert.doesNotMatch(JSON.stringify(handler.events), /hunter2/)
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('marks a message whose body is not JSON on a JSON route as failed, and its dead letter continues the trace', async () => {
    const router = new Router().on('json/{n}', () => {}, { qos: 1, payload: 'json', onError: { deadLetter: 'dead' } })
    const { app, published, deliver } = await started(router)
    const message = inbound('json/1', '{oops', withTraceparent(traceparent(TRACE_ID, DEVICE_SPAN)))
    deliver(message)
    assert.equal(await message.settled, true)
    const consumer = await spans.waitFor((s) => s.kind === SpanKind.CONSUMER)
    await app.stop()
    assert.equal(consumer.status.code, SpanStatusCode.ERROR)
    assert.equal(consumer.attributes['error.type'], 'MalformedPayloadError')
    const producer = spans.finished().find((s) => s.kind === SpanKind.PRODUCER)!
    assert.equal(parentOf(producer, spans.finished()), consumer)
    assert.equal(published[0]!.topic, 'dead/json/1')
    assert.equal(published[0]!.options!.properties!.userProperties!.traceparent, traceparent(TRACE_ID, producer.spanContext().spanId))
  })

  it('records nothing for a message its sender did not sample, yet passes the unsampled trace on', async () => {
    const router = new Router().on('quiet/{n}', (ctx) => ctx.publish('quiet/out', 'x'), { qos: 1 })
    const { app, published, deliver } = await started(router)
    const message = inbound('quiet/1', 'x', withTraceparent(traceparent(TRACE_ID, DEVICE_SPAN, false)))
    deliver(message)
    await message.settled
    await app.stop()
    assert.deepEqual(spans.finished(), [])
    const sent = String(published[0]!.options!.properties!.userProperties!.traceparent)
    assert.match(sent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`))
  })

  it("leaves a traceparent the publisher or a provider set as it is", async () => {
    const router = new Router().on('a/{n}', async (ctx) => {
      await ctx.publish('own', 'x', { properties: { userProperties: { traceparent: 'own-value' } } })
      await ctx.publish('provided', 'x')
    }, { qos: 1 })
    const { app, published, deliver } = await started(router)
    app.addPublishProperties(() => ({ tracestate: 'provider=1' }))
    const message = inbound('a/1', 'x', withTraceparent(traceparent(TRACE_ID, DEVICE_SPAN), { tracestate: 'device=1' }))
    deliver(message)
    await message.settled
    await app.stop()
    const [own, provided] = published.map((p) => p.options!.properties!.userProperties!)
    assert.equal(own!.traceparent, 'own-value')
    assert.equal(own!.tracestate, 'provider=1', "a provider's property wins over the trace context's")
    assert.match(String(provided!.traceparent), new RegExp(`^00-${TRACE_ID}-`))
    assert.equal(provided!.tracestate, 'provider=1')
  })

  it('fails the PRODUCER span of a publish the transport refused, and rethrows', async () => {
    const router = new Router()
    const { app } = await started(router)
    Object.assign(app.transport!, { publish: async () => { throw new RangeError('too large') } })
    await assert.rejects(app.publish('big', 'x'), RangeError)
    const producer = await spans.waitFor((s) => s.kind === SpanKind.PRODUCER)
    await app.stop()
    assert.equal(producer.status.code, SpanStatusCode.ERROR)
    assert.equal(producer.parentSpanContext, undefined, 'outside a message: a root span')
  })
})

describe('Tracing helpers', () => {
  before(() => spans.start())
  after(() => spans.stop())
  beforeEach(() => spans.reset())
  let clock: ReturnType<typeof FakeTimers.install> | undefined
  afterEach(() => {
    clock?.uninstall()
    clock = undefined
  })

  it('names a query by its first keyword', () => {
    assert.equal(operationOf('  select 1'), 'SELECT')
    assert.equal(operationOf('insert into t values ($1)'), 'INSERT')
    assert.equal(operationOf('start transaction read only'), 'START')
    assert.equal(operationOf('/* hint */ select 1'), undefined)
  })

  const server = (label: string) => ({ label }) as PgBackend

  it('draws a primary failover from the first missed probe to the new primary taking writes', () => {
    clock = FakeTimers.install({ now: 1_000_000, toFake: ['Date'] })
    const tracing = new PrimaryTracing()
    const [a, b] = [server('a:5432/app'), server('b:5432/app')]
    tracing.note(a, true, true)
    clock.tick(1000)
    tracing.note(a, true, false)
    clock.tick(1000)
    tracing.note(a, false, false)
    clock.tick(1500)
    tracing.note(b, false, true)
    assert.deepEqual(spans.finished(), [], 'not over while the new primary is still rising')
    clock.tick(500)
    tracing.note(b, true, true)
    const [span] = spans.finished()
    assert.equal(span?.name, 'postgresql primary failover')
    assert.deepEqual(span?.attributes, { 'db.system.name': 'postgresql', 'routemq.failover.from': 'a:5432/app', 'routemq.failover.to': 'b:5432/app', 'routemq.outage_ms': 3000 })
    assert.equal(span.startTime[0], 1001, 'starts at the first missed probe')
    assert.equal(span.endTime[0], 1004)
  })

  it('draws an outage when the same primary comes back after falling, and nothing for a missed probe or the first start', () => {
    clock = FakeTimers.install({ now: 1_000_000, toFake: ['Date'] })
    const tracing = new PrimaryTracing()
    const a = server('a:5432/app')
    tracing.note(undefined, false, false)
    tracing.note(a, true, true)
    tracing.note(a, true, false)
    tracing.note(a, true, true)
    assert.deepEqual(spans.finished(), [], 'one missed probe is no outage')
    tracing.note(a, false, false)
    clock.tick(5000)
    tracing.note(a, true, true)
    const [span] = spans.finished()
    assert.equal(span?.name, 'postgresql primary outage')
    assert.equal(span?.attributes['routemq.outage_ms'], 5000)
  })

  it('draws a broker failover over its gap, and a broker outage from down to up', () => {
    clock = FakeTimers.install({ now: 2_000_000, toFake: ['Date'] })
    const tracing = new BrokerPoolTracing()
    tracing.failover({ from: 'b1', to: 'b2', gapMs: 250, replaying: 3 })
    tracing.up('b1')
    tracing.down('b1')
    clock.tick(4000)
    tracing.down('b1')
    clock.tick(1000)
    tracing.up('b1')
    const [failover, outage] = spans.finished()
    assert.equal(failover?.name, 'mqtt broker failover')
    assert.deepEqual(failover?.attributes, {
      'messaging.system': 'mqtt', 'routemq.failover.from': 'b1', 'routemq.failover.to': 'b2', 'routemq.failover.gap_ms': 250, 'routemq.failover.replaying': 3,
    })
    assert.equal(failover.endTime[0] * 1000 + failover.endTime[1] / 1e6 - (failover.startTime[0] * 1000 + failover.startTime[1] / 1e6), 250)
    assert.equal(outage?.name, 'mqtt broker outage')
    assert.equal(outage?.attributes['routemq.outage_ms'], 5000, 'from the first time it was found down')
    assert.equal(spans.finished().length, 2, 'an up without a down draws nothing')
  })
})
