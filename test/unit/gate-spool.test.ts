import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  healthGate, HealthMonitor, MessageDispatcher, Router, silentLogger, type ErrorPolicy, type HealthGate, type InboundMessage,
} from '../../src/index.js'
import { inbound, rootContainerForTests, type RecordedMessage } from '../support/inbound-message.js'
import { pollUntil } from '../support/poll-until.js'

class Outage extends Error {}

/**
 * A gate with a spool on a real LMDB directory, in front of a dispatcher that
 * orders by topic; its dependency `db` is a check the test switches, and the
 * spool replays into the dispatcher as `Application.replay` does.
 */
interface SetupOptions {
  readonly onError?: ErrorPolicy
  /** Stands between the spool and the dispatcher: return true when it took the message itself. */
  readonly intercept?: (message: InboundMessage) => boolean
}

async function setup(dir: string, spool: { maxBytes?: number; whenFull?: 'wait' | 'reject' } = {}, { onError = 'ack', intercept }: SetupOptions = {}) {
  const monitor = new HealthMonitor({ recheckMinIntervalMs: 5 })
  const db = { up: true }
  monitor.register({
    name: 'db', rise: 1, fall: 1, intervalMs: 60_000,
    check: () => { if (!db.up) throw new Error('db down') },
    isOutage: (error) => error instanceof Outage,
  })
  await monitor.start()
  const handled: string[] = []
  let outages = 0
  let failures = 0
  /** Bodies whose handler fails every time. */
  const poisoned = new Set<string>()
  const gate: HealthGate = healthGate('db', { monitor, spool: { path: join(dir, 'spool'), ...spool } })
  const router = new Router().on('devices/{id}', (ctx) => {
    if (outages > 0) {
      outages--
      throw new Outage('connection refused')
    }
    if (failures > 0) {
      failures--
      throw new Error('flaky')
    }
    if (poisoned.has(ctx.raw.toString())) throw new Error('poison')
    handled.push(`${ctx.params.id}:${ctx.raw.toString()}`)
  }, { qos: 1, middleware: [gate] })
  const dispatcher = new MessageDispatcher({
    router, container: rootContainerForTests(), publish: async () => undefined, logger: silentLogger,
    onError, maxInFlight: 100, maxQueued: 1000, ordering: 'topic',
  })
  gate.attach(monitor, { replay: (message) => (intercept?.(message) || dispatcher.replay(message), true), logger: silentLogger, field: 'healthGate' })
  const send = (id: string, n: number): RecordedMessage => {
    const message = inbound(`devices/${id}`, String(n))
    dispatcher.receive(message)
    return message
  }
  const setDb = async (up: boolean): Promise<void> => {
    db.up = up
    await monitor.check('db')
  }
  const close = async (): Promise<void> => {
    monitor.stop()
    await gate.stop()
  }
  return { monitor, gate, dispatcher, send, setDb, handled, close, failOutages: (n: number) => (outages = n), fail: (n: number) => (failures = n), poisoned }
}

/** Resolves once `condition` holds, checking every 2 ms (the spool's writes finish on a worker thread); fails after 10 s. */
async function until(condition: () => boolean): Promise<void> {
  await pollUntil(condition, { timeoutMs: 10_000, everyMs: 2 })
}

/** `handled` entries of one device, as numbers, in the order handled. */
function orderOf(handled: readonly string[], id: string): number[] {
  return handled.filter((h) => h.startsWith(`${id}:`)).map((h) => Number(h.slice(id.length + 1)))
}

describe('healthGate with a spool', () => {
  let dir: string
  let close: (() => Promise<void>) | undefined
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gate-spool-'))
  })
  afterEach(async () => {
    await close?.()
    close = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('acknowledges each message once spooled while the dependency is down, and replays them in order per topic, new ones behind', async () => {
    const s = await setup(dir)
    close = s.close
    await s.setDb(false)
    const spooled = Array.from({ length: 30 }, (_, n) => s.send(`d${n % 3}`, n))
    assert.deepEqual(await Promise.all(spooled.map((m) => m.settled)), new Array(30).fill(true))
    assert.deepEqual(s.handled, [], 'acknowledged, not handled')
    assert.equal(s.gate.stats.spool!.messages, 30)
    assert.equal(s.gate.stats.held, 0, 'nothing waits in memory')
    await s.setDb(true)
    // Sent while the replay runs: they go to the spool behind the others.
    const later = Array.from({ length: 9 }, (_, n) => s.send(`d${n % 3}`, 30 + n))
    await Promise.all(later.map((m) => m.settled))
    await until(() => s.handled.length === 39)
    for (const id of ['d0', 'd1', 'd2']) {
      const order = orderOf(s.handled, id)
      assert.deepEqual(order, [...order].sort((a, b) => a - b), `${id} handled in arrival order`)
      assert.equal(order.length, 13)
    }
    await until(() => s.gate.stats.spool!.messages === 0)
    assert.equal(s.gate.stats.spool!.replayedTotal, s.gate.stats.spool!.spooledTotal)
  })

  it('puts a replayed message that meets an outage back untouched, and replays it again, in order, once a later check passed', async () => {
    const s = await setup(dir)
    close = s.close
    await s.setDb(false)
    await Promise.all(Array.from({ length: 10 }, (_, n) => s.send('d0', n).settled))
    // The first replay meets the outage before the probes notice it.
    s.failOutages(1)
    await s.setDb(true)
    await until(() => s.gate.stats.outageRetries === 1)
    assert.deepEqual(s.handled, [], 'the rest of the pass went back with it')
    assert.equal(s.gate.stats.spool!.messages, 10)
    // The check that passed before the failure does not count: a new one must.
    await s.setDb(true)
    await until(() => s.handled.length === 10)
    assert.deepEqual(orderOf(s.handled, 'd0'), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    await until(() => s.gate.stats.spool!.messages === 0)
  })

  it('stops taking messages when full, leaving them unacknowledged in order, and takes them once the replay made room', async () => {
    const s = await setup(dir, { maxBytes: 1024 })
    close = s.close
    await s.setDb(false)
    const sent = Array.from({ length: 40 }, (_, n) => s.send(`d${n % 4}`, n))
    await until(() => s.gate.stats.spool!.waitingForRoom > 0 && s.gate.stats.spool!.spooledTotal + s.gate.stats.spool!.waitingForRoom === 40)
    const settled = new Set<number>()
    sent.forEach((m, n) => void m.settled.then(() => settled.add(n)))
    await new Promise((resolve) => setImmediate(resolve))
    assert.ok(settled.size < 40, `${settled.size} acknowledged while the spool was full`)
    assert.ok(s.gate.stats.spool!.bytes <= 1024)
    await s.setDb(true)
    assert.deepEqual(await Promise.all(sent.map((m) => m.settled)), new Array(40).fill(true))
    await until(() => s.handled.length === 40)
    for (const id of ['d0', 'd1', 'd2', 'd3']) assert.deepEqual(orderOf(s.handled, id), Array.from({ length: 10 }, (_, i) => Number(id.slice(1)) + 4 * i))
  })

  it("with whenFull 'reject', fails what does not fit with reason 'spool-full', for the route's error policy", async () => {
    const s = await setup(dir, { maxBytes: 1024, whenFull: 'reject' })
    close = s.close
    await s.setDb(false)
    const sent = Array.from({ length: 40 }, (_, n) => s.send(`d${n % 4}`, n))
    await Promise.all(sent.map((m) => m.settled))
    const { spool, rejected } = s.gate.stats
    assert.ok(rejected['spool-full'] > 0, 'some did not fit')
    assert.equal(spool!.spooledTotal + rejected['spool-full'], 40)
    assert.equal(spool!.waitingForRoom, 0, 'none waits')
    assert.equal(s.dispatcher.stats.failed, rejected['spool-full'], 'each went to the error policy as a failure')
  })

  it('keeps a message its route withheld, and the rest of its topic, for a later pass, in order', async () => {
    const s = await setup(dir, {}, { onError: 'redeliver' })
    close = s.close
    await s.setDb(false)
    await Promise.all(Array.from({ length: 6 }, (_, n) => s.send(n < 3 ? 'd0' : 'd1', n).settled))
    s.fail(1)
    await s.setDb(true)
    await until(() => s.handled.length === 6)
    assert.deepEqual(orderOf(s.handled, 'd0'), [0, 1, 2], 'the withheld first reading of d0 was handled again before the others')
    assert.equal(s.dispatcher.stats.withheld, 1)
    await until(() => s.gate.stats.spool!.messages === 0)
  })

  it('goes on when the dispatcher settles a replay at once (its route gone after a deploy), with more of its topic behind it', async () => {
    const settledAtOnce: number[] = []
    const s = await setup(dir, {}, {
      intercept: (message) => {
        if (message.topic !== 'devices/gone') return false
        settledAtOnce.push(Number(message.payload.toString()))
        message.settle(true)
        return true
      },
    })
    close = s.close
    await s.setDb(false)
    await Promise.all([0, 1, 2, 3, 4, 5].map((n) => s.send(n % 2 === 0 ? 'gone' : 'd1', n).settled))
    await s.setDb(true)
    await until(() => s.gate.stats.spool!.messages === 0)
    assert.deepEqual(settledAtOnce, [0, 2, 4])
    assert.deepEqual(orderOf(s.handled, 'd1'), [1, 3, 5])
  })

  it('replays once a stopped monitor runs again (a failed start, retried)', async () => {
    const s = await setup(dir)
    close = s.close
    await s.setDb(false)
    await Promise.all([0, 1, 2].map((n) => s.send('d0', n).settled))
    s.monitor.stop()
    await s.monitor.start()
    await s.setDb(true)
    await until(() => s.handled.length === 3)
    assert.deepEqual(orderOf(s.handled, 'd0'), [0, 1, 2])
  })

  it('takes a message larger than maxBytes into an empty spool, rather than waiting for ever', async () => {
    const s = await setup(dir, { maxBytes: 1024 })
    close = s.close
    await s.setDb(false)
    const big = inbound('devices/d0', 'x'.repeat(4000))
    s.dispatcher.receive(big)
    assert.equal(await big.settled, true)
    const small = s.send('d1', 1)
    await until(() => s.gate.stats.spool!.waitingForRoom === 1)
    await s.setDb(true)
    assert.equal(await small.settled, true)
    await until(() => s.handled.length === 2)
  })

  it("holds back only the topic of a replay its route keeps withholding, backing off, while other topics drain", async () => {
    const s = await setup(dir, {}, { onError: 'redeliver' })
    close = s.close
    s.poisoned.add('0')
    await s.setDb(false)
    await Promise.all([0, 1, 2, 3, 4, 5].map((n) => s.send(n < 3 ? 'd0' : 'd1', n).settled))
    await s.setDb(true)
    await until(() => orderOf(s.handled, 'd1').length === 3)
    const startedAt = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 3500))
    // 1 s, then 2 s: at most three tries in 3.5 s, where a retry every pass would make dozens.
    assert.ok(s.dispatcher.stats.withheld <= 3, `${s.dispatcher.stats.withheld} tries of the poison message in ${Date.now() - startedAt} ms`)
    assert.deepEqual(orderOf(s.handled, 'd0'), [], 'nothing of d0 overtook its withheld first message')
    assert.equal(s.gate.stats.spool!.messages, 3)
    s.poisoned.clear()
    await until(() => orderOf(s.handled, 'd0').length === 3)
    assert.deepEqual(orderOf(s.handled, 'd0'), [0, 1, 2])
  })
})
