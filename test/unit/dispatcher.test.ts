import assert from 'node:assert/strict'
import FakeTimers from '@sinonjs/fake-timers'
import { EventEmitter } from 'node:events'
import {
  ConsoleLogger, currentMessage, MalformedPayloadError, MessageDispatcher, MESSAGE_CONTEXT, Router, silentLogger,
  type ErrorPolicy, type Logger, type MessageContext, type LogFields, type MessageOrdering, type PublishOptions,
} from '../../src/index.js'
import { assertPublishTopic } from '../../src/routemq/publish-topic.js'
import { inbound, rootContainerForTests } from '../support/inbound-message.js'

interface Published { topic: string; payload: unknown; options?: PublishOptions }

function setup(router: Router, options: { onError?: ErrorPolicy; maxInFlight?: number; maxQueued?: number; ordering?: MessageOrdering; logger?: Logger; failPublish?: boolean | (() => Error); checkTopic?: boolean } = {}) {
  const published: Published[] = []
  const dispatcher = new MessageDispatcher({
    router,
    container: rootContainerForTests(),
    publish: async (topic, payload, publishOptions) => {
      if (options.failPublish) throw typeof options.failPublish === 'function' ? options.failPublish() : new Error('broker gone')
      if (options.checkTopic) assertPublishTopic(topic)
      published.push({ topic, payload, options: publishOptions })
    },
    logger: options.logger ?? silentLogger,
    onError: options.onError ?? 'ack',
    maxInFlight: options.maxInFlight ?? 100,
    maxQueued: options.maxQueued ?? 1000,
    ordering: options.ordering ?? 'topic',
  })
  return { dispatcher, published }
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((r) => (open = r))
  return { open, opened }
}

describe('MessageDispatcher', () => {
  describe('payload decoding', () => {
    const cases: [string, string | Buffer, unknown, { contentType?: string; format?: 'auto' | 'json' | 'text' | 'buffer' }][] = [
      ['JSON object', '{"celsius":21.5}', { celsius: 21.5 }, {}],
      ['JSON array with leading space', '  [1,2]', [1, 2], {}],
      ['JSON number', '42', 42, {}],
      ['plain text stays a Buffer', 'hello', Buffer.from('hello'), {}],
      ['JSON-looking but invalid stays a Buffer on auto', '{oops', Buffer.from('{oops'), {}],
      ['text route', 'hello', 'hello', { format: 'text' }],
      ['buffer route keeps JSON raw', '{"a":1}', Buffer.from('{"a":1}'), { format: 'buffer' }],
      ['binary', Buffer.from([0xff, 0x00, 0x10]), Buffer.from([0xff, 0x00, 0x10]), {}],
    ]
    for (const [name, body, expected, { contentType, format }] of cases) {
      it(name, async () => {
        let payload: unknown
        const router = new Router().on('t/{id}', (ctx) => { payload = ctx.payload }, { payload: format ?? 'auto' })
        const { dispatcher } = setup(router)
        const message = inbound('t/1', body, contentType ? { properties: { contentType } } : {})
        dispatcher.receive(message)
        assert.equal(await message.settled, true)
        assert.deepEqual(payload, expected)
      })
    }

    it('fails only that message on a JSON route with a malformed body, acknowledging it', async () => {
      const seen: unknown[] = []
      const warnings: LogFields[] = []
      const logger: Logger = { ...silentLogger, warn: (_m, f) => { warnings.push(f ?? {}) } }
      const router = new Router().on('t', (ctx) => { seen.push(ctx.payload) }, { payload: 'json' })
      const { dispatcher } = setup(router, { logger, onError: 'redeliver' })
      const bad = inbound('t', '{"celsius": 21.')
      const good = inbound('t', '{"celsius": 22}')
      dispatcher.receive(bad)
      dispatcher.receive(good)
      assert.equal(await bad.settled, true, 'a malformed body is never redelivered')
      assert.equal(await good.settled, true)
      assert.deepEqual(seen, [{ celsius: 22 }])
      assert.equal(dispatcher.stats.malformed, 1)
      assert.ok(warnings[0]?.error instanceof MalformedPayloadError)
    })

    it('treats an MQTT 5 JSON content type as a promise of JSON on auto routes', async () => {
      const router = new Router().on('t', () => assert.fail('must not run'))
      const { dispatcher } = setup(router)
      const message = inbound('t', 'not json', { properties: { contentType: 'application/json; charset=utf-8' } })
      dispatcher.receive(message)
      await message.settled
      assert.equal(dispatcher.stats.malformed, 1)
    })
  })

  describe('context', () => {
    it('carries topic, params, properties, user properties and a per-message container', async () => {
      let ctx!: MessageContext
      const router = new Router().on('devices/{id}/status', (c) => { ctx = c })
      const { dispatcher } = setup(router)
      const message = inbound('devices/7/status', '{}', {
        qos: 1,
        properties: { userProperties: { ip: '203.0.113.9', tag: ['a', 'b'] }, responseTopic: 'r/7' },
      })
      dispatcher.receive(message)
      await message.settled
      assert.equal(ctx.topic, 'devices/7/status')
      assert.deepEqual(ctx.params, { id: '7' })
      assert.equal(ctx.qos, 1)
      assert.equal(ctx.userProperty('ip'), '203.0.113.9')
      assert.equal(ctx.userProperty('tag'), 'a')
      assert.equal(ctx.properties?.responseTopic, 'r/7')
      assert.equal(ctx.container.resolve(MESSAGE_CONTEXT), ctx)
      assert.equal(ctx.container, ctx.container, 'one scope per message')
    })

    it('exposes the message as currentMessage() across awaits in the handler', async () => {
      const seen: (string | undefined)[] = []
      const router = new Router().on('a/{n}', async () => {
        await new Promise((r) => setImmediate(r))
        seen.push(currentMessage()?.topic)
      })
      const { dispatcher } = setup(router, { ordering: 'none' })
      const one = inbound('a/1', 'x')
      const two = inbound('a/2', 'x')
      dispatcher.receive(one)
      dispatcher.receive(two)
      await Promise.all([one.settled, two.settled])
      assert.deepEqual(seen.sort(), ['a/1', 'a/2'])
      assert.equal(currentMessage(), undefined)
    })

    it('resolves [Controller, method] handlers from the message scope', async () => {
      class Devices {
        calls: string[] = []
        status(ctx: MessageContext) { this.calls.push(ctx.params.id!) }
      }
      const instances: Devices[] = []
      const router = new Router().on('d/{id}', [Devices, 'status'])
      const { dispatcher } = setup(router)
      const container = rootContainerForTests()
      container.register(Devices, { useFactory: () => { const d = new Devices(); instances.push(d); return d } })
      const scoped = new MessageDispatcher({ router, container, publish: async () => {}, logger: silentLogger, onError: 'ack', maxInFlight: 10, maxQueued: 10, ordering: 'topic' })
      const message = inbound('d/9', 'x')
      scoped.receive(message)
      assert.equal(await message.settled, true)
      assert.deepEqual(instances.map((d) => d.calls), [['9']])
      assert.ok(dispatcher)
    })
  })

  describe('acknowledgement', () => {
    it('waits for the handler even when a middleware did not await next(ctx)', async () => {
      const hold = gate()
      const router = new Router().on('t', () => hold.opened, { middleware: [(ctx, next) => { void next(ctx) }] })
      const { dispatcher } = setup(router)
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      await new Promise((r) => setImmediate(r))
      assert.deepEqual(message.settlements, [])
      hold.open()
      assert.equal(await message.settled, true)
    })

    it('applies the error policy to a handler that rejects behind a middleware that did not await it', async () => {
      const router = new Router().on('t', async () => { throw new Error('late') }, { middleware: [(ctx, next) => { void next(ctx) }] })
      const { dispatcher } = setup(router, { onError: 'redeliver' })
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      assert.equal(await message.settled, false)
      assert.equal(dispatcher.stats.failed, 1)
    })

    it('settles a message whose handler threw a value that cannot be logged as JSON', async () => {
      const circular: Record<string, unknown> = { code: 'E_LOOP' }
      circular.self = circular
      const lines: string[] = []
      const logger = new ConsoleLogger({ write: (line) => lines.push(line) })
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a handler throwing a non-Error that JSON can't print is the case tested
      const router = new Router().on('t', () => { throw circular })
      const { dispatcher } = setup(router, { logger })
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      assert.equal(await message.settled, true)
      assert.match(lines[0]!, /handler failed/)
    })

    it('logs a storm of failures of a route as one ERROR per kind of error, the rest counted', async () => {
      const lines: string[] = []
      const logger = new ConsoleLogger({ write: (line) => lines.push(line) })
      let calls = 0
      const router = new Router().on('t/{n}', () => {
        calls++
        throw calls % 10 === 0 ? new TypeError('a bug') : Object.assign(new Error('primary down'), { code: 'E_DOWN' })
      })
      const { dispatcher } = setup(router, { logger })
      for (let n = 0; n < 30; n++) {
        const message = inbound(`t/${n}`, 'x')
        dispatcher.receive(message)
        await message.settled
      }
      assert.equal(dispatcher.stats.failed, 30)
      const failures = lines.filter((line) => / ERROR handler failed /.test(line))
      assert.equal(failures.length, 2, failures.join('\n'))
      assert.match(failures[0]!, /primary down/)
      assert.match(failures[1]!, /TypeError: a bug/)
    })

    it('keeps handling when the logger itself throws', async () => {
      const throwing: Logger = { debug() { throw new Error('log') }, info() { throw new Error('log') }, warn() { throw new Error('log') }, error() { throw new Error('log') } }
      const router = new Router().on('t', () => { throw new Error('x') })
      const { dispatcher } = setup(router, { logger: throwing, onError: 'redeliver' })
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      assert.equal(await message.settled, false)
    })

    it('handles only the copy for the most specific route when overlapping subscriptions deliver several', async () => {
      const seen: string[] = []
      const router = new Router()
        .on('a/+', () => { seen.push('wildcard') }, { name: 'wildcard' })
        .on('a/b', () => { seen.push('specific') }, { name: 'specific' })
      const { dispatcher } = setup(router)
      const [wildcard, specific] = router.routes
      const copyForWildcard = inbound('a/b', 'x', { properties: { subscriptionIdentifier: wildcard!.identifier } })
      const copyForSpecific = inbound('a/b', 'x', { properties: { subscriptionIdentifier: specific!.identifier } })
      const combined = inbound('a/b', 'x', { properties: { subscriptionIdentifier: [wildcard!.identifier, specific!.identifier] } })
      for (const message of [copyForWildcard, copyForSpecific, combined]) dispatcher.receive(message)
      await Promise.all([copyForWildcard.settled, copyForSpecific.settled, combined.settled])
      assert.deepEqual(seen, ['specific', 'specific'])
      assert.equal(await copyForWildcard.settled, true, 'the extra copy is acknowledged')
      assert.equal(dispatcher.stats.duplicateCopies, 1)
    })

    it('settles a message only after its handler settled', async () => {
      const hold = gate()
      const router = new Router().on('t', () => hold.opened)
      const { dispatcher } = setup(router)
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      await new Promise((r) => setImmediate(r))
      assert.deepEqual(message.settlements, [], 'not settled while the handler runs')
      hold.open()
      assert.equal(await message.settled, true)
      assert.equal(dispatcher.stats.handled, 1)
    })

    it("acknowledges a failed message under 'ack' and counts it", async () => {
      const router = new Router().on('t', () => { throw new Error('db down') })
      const { dispatcher } = setup(router, { onError: 'ack' })
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      assert.equal(await message.settled, true)
      assert.equal(dispatcher.stats.failed, 1)
    })

    it("leaves a failed message unacknowledged under 'redeliver', also when set per route", async () => {
      const router = new Router()
        .on('a', async () => { throw new Error('x') })
        .on('b', async () => { throw new Error('x') }, { onError: 'redeliver' })
      const { dispatcher } = setup(router, { onError: 'redeliver' })
      const a = inbound('a', 'x')
      dispatcher.receive(a)
      assert.equal(await a.settled, false)
      const { dispatcher: acking } = setup(router, { onError: 'ack' })
      const b = inbound('b', 'x')
      acking.receive(b)
      assert.equal(await b.settled, false)
    })

    it('dead-letters a failed message, then acknowledges it', async () => {
      const router = new Router().on('devices/{id}', () => { throw new Error('x') })
      const { dispatcher, published } = setup(router, { onError: { deadLetter: 'dead' } })
      const message = inbound('devices/7', 'body')
      dispatcher.receive(message)
      assert.equal(await message.settled, true)
      assert.equal(published.length, 1)
      assert.equal(published[0]!.topic, 'dead/devices/7')
      assert.deepEqual(published[0]!.payload, Buffer.from('body'))
      assert.equal(published[0]!.options?.qos, 1)
      assert.equal(dispatcher.stats.deadLettered, 1)
    })

    it('does not dead-letter a dead letter again', async () => {
      const router = new Router().on('#', () => { throw new Error('x') })
      const { dispatcher, published } = setup(router, { onError: { deadLetter: 'dead' } })
      const message = inbound('dead/devices/7', 'body')
      dispatcher.receive(message)
      assert.equal(await message.settled, true)
      assert.deepEqual(published, [])
    })

    it('leaves the message unacknowledged when the dead-letter publish fails', async () => {
      const router = new Router().on('t', () => { throw new Error('x') })
      const { dispatcher } = setup(router, { onError: { deadLetter: 'dead' }, failPublish: true })
      const message = inbound('t', 'x')
      dispatcher.receive(message)
      assert.equal(await message.settled, false)
    })

    it('dead-letters to the prefix itself, with the original topic as a user property, when prefix/topic would be too long', async () => {
      const router = new Router().on('big/#', () => { throw new Error('x') })
      const { dispatcher, published } = setup(router, { onError: { deadLetter: 'dl' }, checkTopic: true })
      const topic = `big/${'x'.repeat(65_535 - 4)}`
      const message = inbound(topic, 'body')
      dispatcher.receive(message)
      assert.equal(await message.settled, true)
      assert.equal(published.length, 1)
      assert.equal(published[0]!.topic, 'dl')
      assert.deepEqual(published[0]!.options, { qos: 1, properties: { userProperties: { 'routemq-original-topic': topic } } })
      assert.equal(dispatcher.stats.deadLettered, 1)
    })

    it('acknowledges a poison message whose dead letter the broker refuses for good, so that it cannot hold an in-flight slot', async () => {
      const router = new Router().on('t', () => { throw new Error('x') })
      const refused = Object.assign(new Error('Publish error: Not authorized'), { code: 0x87 })
      const { dispatcher } = setup(router, { onError: { deadLetter: 'dead' }, failPublish: () => refused })
      const messages = Array.from({ length: 25 }, () => inbound('t', 'x'))
      for (const message of messages) dispatcher.receive(message)
      assert.deepEqual(new Set(await Promise.all(messages.map((m) => m.settled))), new Set([true]))
      assert.equal(dispatcher.stats.deadLetterRefused, 25)
      assert.equal(dispatcher.stats.deadLettered, 0)
    })

    it('cuts a 64 KB topic in every log line to a sane length', async () => {
      const lines: LogFields[] = []
      const record = (_message: string, fields?: LogFields): void => { lines.push(fields ?? {}) }
      const logger: Logger = { debug: record, info: record, warn: record, error: record }
      const router = new Router().on('big/#', () => { throw new Error('x') }, { payload: 'json' })
      const { dispatcher } = setup(router, { onError: { deadLetter: 'dl' }, failPublish: true, logger })
      const topic = `big/${'x'.repeat(65_000)}`
      const message = inbound(topic, 'not json')
      dispatcher.receive(message)
      await message.settled
      dispatcher.receive(inbound(`unrouted/${'y'.repeat(65_000)}`, 'x'))
      assert.ok(lines.length >= 2)
      for (const fields of lines) {
        for (const value of Object.values(fields)) if (typeof value === 'string') assert.ok(value.length < 600, `a logged field of ${value.length} characters`)
      }
    })

    it('acknowledges and counts a topic no route matches, logging it once', async () => {
      const warnings: string[] = []
      const logger: Logger = { ...silentLogger, warn: (m, f) => { warnings.push(`${m} ${String(f?.topic)}`) } }
      const { dispatcher } = setup(new Router().on('known', () => {}), { logger })
      const first = inbound('unknown/1', 'x')
      const again = inbound('unknown/1', 'x')
      assert.doesNotThrow(() => { dispatcher.receive(first); dispatcher.receive(again) })
      assert.equal(await first.settled, true)
      assert.equal(dispatcher.stats.unmatched, 2)
      assert.equal(warnings.length, 1)
      assert.match(warnings[0]!, /unknown\/1/)
    })
  })

  describe('ordering, concurrency and draining', () => {
    it('handles one topic in arrival order while other topics run alongside', async () => {
      const events = new EventEmitter()
      const trace: string[] = []
      const holds = new Map<string, ReturnType<typeof gate>>()
      const router = new Router().on('d/{id}', async (ctx) => {
        const key = `${ctx.topic}#${String(ctx.payload)}`
        trace.push(`start ${key}`)
        const hold = gate()
        holds.set(key, hold)
        events.emit('started', key)
        await hold.opened
        trace.push(`end ${key}`)
      }, { payload: 'text' })
      const { dispatcher } = setup(router, { ordering: 'topic' })
      const a1 = inbound('d/a', '1')
      const a2 = inbound('d/a', '2')
      const b1 = inbound('d/b', '1')
      const started = waitFor(events, 'started', 2)
      dispatcher.receive(a1)
      dispatcher.receive(a2)
      dispatcher.receive(b1)
      assert.deepEqual((await started).sort(), ['d/a#1', 'd/b#1'], 'a2 waits behind a1; b1 runs alongside')
      const nextStarted = waitFor(events, 'started', 1)
      holds.get('d/a#1')!.open()
      assert.deepEqual(await nextStarted, ['d/a#2'])
      holds.get('d/a#2')!.open()
      holds.get('d/b#1')!.open()
      await Promise.all([a1.settled, a2.settled, b1.settled])
      assert.ok(trace.indexOf('end d/a#1') < trace.indexOf('start d/a#2'))
    })

    it('runs a replayed message beside a running message of its topic, and leaves that topic\'s queue as it was', async () => {
      const events = new EventEmitter()
      const holds = new Map<string, ReturnType<typeof gate>>()
      const router = new Router().on('d/{id}', async (ctx) => {
        const key = String(ctx.payload)
        const hold = gate()
        holds.set(key, hold)
        events.emit('started', key)
        await hold.opened
      }, { payload: 'text' })
      const { dispatcher } = setup(router, { ordering: 'topic' })
      const live = inbound('d/a', 'live')
      const behind = inbound('d/a', 'behind')
      const replayed = inbound('d/a', 'replayed')
      const started = waitFor(events, 'started', 2)
      dispatcher.receive(live)
      dispatcher.receive(behind)
      dispatcher.replay(replayed)
      assert.deepEqual((await started).sort(), ['live', 'replayed'], 'the replay does not wait behind the running message of its topic')
      holds.get('replayed')!.open()
      assert.equal(await replayed.settled, true)
      assert.equal(holds.has('behind'), false, 'the replay settling did not start the message waiting behind the running one')
      const next = waitFor(events, 'started', 1)
      holds.get('live')!.open()
      assert.deepEqual(await next, ['behind'])
      holds.get('behind')!.open()
      assert.deepEqual(await Promise.all([live.settled, behind.settled]), [true, true])
      assert.equal(dispatcher.stats.inFlight, 0)
    })

    it('runs at most maxInFlight handlers and starts waiting messages in arrival order as slots free', async () => {
      const events = new EventEmitter()
      const holds = new Map<string, ReturnType<typeof gate>>()
      const router = new Router().on('t/{n}', async (ctx) => {
        const hold = gate()
        holds.set(ctx.params.n, hold)
        events.emit('started', ctx.params.n)
        await hold.opened
      })
      const { dispatcher } = setup(router, { maxInFlight: 2, ordering: 'none' })
      const messages = ['1', '2', '3', '4'].map((n) => inbound(`t/${n}`, 'x'))
      const firstTwo = waitFor(events, 'started', 2)
      for (const message of messages) assert.equal(dispatcher.receive(message), undefined, 'the transport is never asked to stop reading')
      assert.deepEqual(await firstTwo, ['1', '2'])
      assert.equal(dispatcher.stats.inFlight, 4)
      const third = waitFor(events, 'started', 1)
      holds.get('2')!.open()
      assert.deepEqual(await third, ['3'], 'the oldest waiting message takes the freed slot')
      const fourth = waitFor(events, 'started', 1)
      holds.get('1')!.open()
      assert.deepEqual(await fourth, ['4'])
      holds.get('3')!.open()
      holds.get('4')!.open()
      await Promise.all(messages.map((m) => m.settled))
      assert.equal(dispatcher.stats.inFlight, 0)
    })

    it('drops QoS 0 messages beyond maxQueued and counts them, but never QoS 1', async () => {
      const hold = gate()
      const router = new Router().on('t/{n}', () => hold.opened)
      const { dispatcher } = setup(router, { maxInFlight: 1, maxQueued: 2, ordering: 'none' })
      const kept = [inbound('t/1', 'x', { qos: 0 }), inbound('t/2', 'x', { qos: 0 })]
      const dropped = inbound('t/3', 'x', { qos: 0 })
      const atLeastOnce = inbound('t/4', 'x', { qos: 1 })
      for (const message of [...kept, dropped, atLeastOnce]) dispatcher.receive(message)
      assert.equal(dispatcher.stats.dropped, 1)
      hold.open()
      await Promise.all([...kept, atLeastOnce].map((m) => m.settled))
      assert.equal(await atLeastOnce.settled, true)
      assert.deepEqual(dropped.settlements, [])
      assert.equal(dispatcher.stats.handled, 3)
    })

    it('logs a QoS 0 flood it drops once, then a count per 10 s, not a line per message', async () => {
      const clock = FakeTimers.install({ now: 0, toFake: ['setTimeout', 'clearTimeout'] })
      try {
        const warnings: [string, LogFields | undefined][] = []
        const logger: Logger = { ...silentLogger, warn: (message, fields) => { warnings.push([message, fields]) } }
        const hold = gate()
        const router = new Router().on('t/{n}', () => hold.opened)
        const { dispatcher } = setup(router, { maxInFlight: 1, maxQueued: 1, logger })
        dispatcher.receive(inbound('t/0', 'x', { qos: 0 }))
        for (let n = 1; n <= 49_900; n++) dispatcher.receive(inbound(`t/${n}`, 'x', { qos: 0 }))
        assert.equal(dispatcher.stats.dropped, 49_900)
        assert.equal(warnings.length, 1)
        clock.tick(10_000)
        assert.equal(warnings.length, 2)
        assert.equal(warnings[1]![1]?.count, 49_899)
        clock.tick(60_000)
        assert.equal(warnings.length, 2, 'nothing more to say once the flood stopped')
        dispatcher.receive(inbound('t/again', 'x', { qos: 0 }))
        assert.equal(warnings.length, 3, 'a new flood is reported at once')
        hold.open()
      } finally {
        clock.uninstall()
      }
    })

    it('drains running handlers, and refuses new messages without acknowledging them', async () => {
      const hold = gate()
      const router = new Router().on('t', () => hold.opened)
      const { dispatcher } = setup(router)
      const running = inbound('t', 'x')
      dispatcher.receive(running)
      dispatcher.refuse()
      const late = inbound('t', 'x')
      dispatcher.receive(late)
      assert.equal(await late.settled, false)
      const drained = dispatcher.drain(5000)
      hold.open()
      assert.deepEqual(await drained, { drained: true, abandoned: 0 })
      assert.equal(await running.settled, true)
      assert.equal(dispatcher.stats.refused, 1)
    })

    for (const ordering of ['none', 'topic'] as const) {
      it(`never starts a handler abandoned by a timed-out drain, and settles the waiting ones unacknowledged at once (ordering ${ordering})`, async () => {
        const hold = gate()
        let started = 0
        const router = new Router().on('t/{n}', () => {
          started++
          return hold.opened
        })
        const { dispatcher } = setup(router, { maxInFlight: 1, ordering })
        const topic = (n: number): string => (ordering === 'topic' ? 't/same' : `t/${n}`)
        const messages = Array.from({ length: 6 }, (_, n) => inbound(topic(n), 'x'))
        for (const message of messages) dispatcher.receive(message)
        dispatcher.refuse()
        assert.deepEqual(await dispatcher.drain(10), { drained: false, abandoned: 6 })
        dispatcher.abandon()
        assert.deepEqual(await Promise.all(messages.slice(1).map((m) => m.settled)), [false, false, false, false, false])
        assert.equal(dispatcher.stats.inFlight, 1, 'only the running handler is still accepted')
        hold.open()
        assert.equal(await messages[0]!.settled, false, 'the running one settles unacknowledged too')
        await new Promise((resolve) => setImmediate(resolve))
        assert.equal(started, 1)
        assert.equal(dispatcher.stats.inFlight, 0)
        assert.deepEqual(messages.map((m) => m.settlements.length), [1, 1, 1, 1, 1, 1])
      })
    }

    it('reports handlers still running when the drain time runs out', async () => {
      const router = new Router().on('t', () => new Promise(() => {}))
      const { dispatcher } = setup(router)
      dispatcher.receive(inbound('t', 'x'))
      assert.deepEqual(await dispatcher.drain(20), { drained: false, abandoned: 1 })
    })
  })
})

function waitFor(events: EventEmitter, name: string, count: number): Promise<string[]> {
  const seen: string[] = []
  return new Promise((resolve) => {
    const listener = (value: string): void => {
      seen.push(value)
      if (seen.length < count) return
      events.off(name, listener)
      resolve(seen)
    }
    events.on(name, listener)
  })
}
