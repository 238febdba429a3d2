import assert from 'node:assert/strict'
import {
  DependencyUnavailableError, healthGate, HealthMonitor, InvalidOptionError, MessageDispatcher, Router, silentLogger,
  type ErrorPolicy, type HealthGateOptions, type MiddlewareFunction,
} from '../../src/index.js'
import { inbound, rootContainerForTests, type RecordedMessage } from '../support/inbound-message.js'

class Outage extends Error {}

/** A monitor with one dependency, `db`, whose health the test switches; and a route gated on it. */
interface SetupOptions {
  readonly onError?: ErrorPolicy
  /** Middleware put before the gate. */
  readonly before?: readonly MiddlewareFunction[]
  readonly maxInFlight?: number
  /** Start the monitor before any message. Default true. */
  readonly start?: boolean
}

async function setup(
  gateOptions: Omit<HealthGateOptions, 'monitor'> = {},
  { onError = 'ack', before = [], maxInFlight = 100, start = true }: SetupOptions = {},
) {
  const monitor = new HealthMonitor({ recheckMinIntervalMs: 5 })
  const db: { up: boolean; answer?: Promise<void> } = { up: true }
  monitor.register({
    name: 'db', rise: 1, fall: 1, intervalMs: 60_000,
    check: async () => {
      await db.answer
      if (!db.up) throw new Error('db down')
    },
    isOutage: (error) => error instanceof Outage,
  })
  if (start) await monitor.start()
  const handled: string[] = []
  /** Per message: whether its handler had finished when it was settled. */
  const handledAtSettle = new Map<string, boolean>()
  let failNext = 0
  let failPlainly = 0
  const gate = healthGate('db', { monitor, ...gateOptions })
  const router = new Router()
  router.on('devices/{id}', async (ctx) => {
    if (failNext > 0) {
      failNext--
      throw new Outage('connection refused')
    }
    if (failPlainly > 0) {
      failPlainly--
      throw new Error('flaky')
    }
    handled.push(String(ctx.payload))
  }, { qos: 1, middleware: [...before, gate] })
  router.on('other/{id}', (ctx) => {
    handled.push(String(ctx.payload))
  }, { qos: 1 })
  const dispatcher = new MessageDispatcher({
    router, container: rootContainerForTests(), publish: async () => undefined, logger: silentLogger,
    onError, maxInFlight, maxQueued: 1000, ordering: 'none',
  })
  const send = (id: string, body: string, prefix = 'devices'): RecordedMessage => {
    const message = inbound(`${prefix}/${id}`, body)
    const settle = message.settle.bind(message)
    const recorded: RecordedMessage = {
      ...message,
      settle(ack) {
        handledAtSettle.set(body, handled.includes(body))
        settle(ack)
      },
    }
    dispatcher.receive(recorded)
    return recorded
  }
  const setDb = async (up: boolean) => {
    db.up = up
    await monitor.check('db')
  }
  /** Until `answer()` is called, checks hang. */
  const slowChecks = () => {
    let answer!: () => void
    db.answer = new Promise<void>((resolve) => (answer = resolve))
    return () => {
      db.answer = undefined
      answer()
    }
  }
  return { monitor, gate, dispatcher, send, setDb, handled, handledAtSettle, slowChecks, failOutages: (n: number) => (failNext = n), failPlainly: (n: number) => (failPlainly = n) }
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

/** Middleware that runs the rest of the chain once more when it fails. */
const retry: MiddlewareFunction = async (ctx, next) => {
  try {
    return await next(ctx)
  } catch {
    return next(ctx)
  }
}

/** Middleware that gives up on the rest of the chain after `ms`. */
const timeoutAfter = (ms: number): MiddlewareFunction => (ctx, next) =>
  Promise.race([next(ctx), new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), ms))])

describe('healthGate', () => {
  it('lets messages straight through while the dependency is healthy', async () => {
    const { send, handled, monitor } = await setup()
    assert.equal(await send('1', 'a').settled, true)
    assert.deepEqual(handled, ['a'])
    monitor.stop()
  })

  it('holds messages unacknowledged while the dependency is down and replays them in arrival order per route', async () => {
    const { send, setDb, handled, handledAtSettle, gate, monitor } = await setup()
    await setDb(false)
    const messages = ['m1', 'm2', 'm3', 'm4', 'm5'].map((body, i) => send(String(i % 2), body))
    await tick()
    assert.deepEqual(handled, [])
    assert.equal(gate.stats.held, 5)
    assert.ok(messages.every((m) => m.settlements.length === 0), 'nothing settled while held')
    await setDb(true)
    assert.deepEqual(await Promise.all(messages.map((m) => m.settled)), [true, true, true, true, true])
    assert.deepEqual(handled, ['m1', 'm2', 'm3', 'm4', 'm5'])
    assert.ok([...handledAtSettle.values()].every(Boolean), 'each was acknowledged only after its handler ran')
    assert.deepEqual({ held: gate.stats.held, heldTotal: gate.stats.heldTotal, released: gate.stats.released }, { held: 0, heldTotal: 5, released: 5 })
    monitor.stop()
  })

  it('keeps a newcomer behind a message already held, though the dependency reads healthy', async () => {
    const { send, handled, monitor, gate, failOutages, slowChecks } = await setup()
    failOutages(1)
    const answer = slowChecks()
    const first = send('1', 'first')
    await tick()
    assert.equal(gate.stats.held, 1, 'held after its outage, until a check passes again')
    assert.equal(monitor.state('db'), 'healthy')
    const second = send('1', 'second')
    await tick()
    assert.deepEqual(handled, [], 'the newcomer waits behind it')
    assert.equal(gate.stats.held, 2)
    answer()
    await Promise.all([first.settled, second.settled])
    assert.deepEqual(handled, ['first', 'second'])
    monitor.stop()
  })

  it('acknowledges nothing early behind a middleware that does not await next(ctx)', async () => {
    const careless: MiddlewareFunction = (ctx, next) => {
      void next(ctx)
    }
    const { send, setDb, handled, handledAtSettle, monitor } = await setup({}, { before: [careless] })
    await setDb(false)
    const message = send('1', 'a')
    await tick()
    assert.deepEqual(message.settlements, [], 'held, so not settled')
    await setDb(true)
    assert.equal(await message.settled, true)
    assert.deepEqual(handled, ['a'])
    assert.equal(handledAtSettle.get('a'), true, 'acknowledged after the handler ran')
    monitor.stop()
  })

  it('settles by the last run when a middleware before the gate retries a failed handler', async () => {
    const { send, handled, monitor, dispatcher, failPlainly } = await setup({}, { before: [retry], onError: 'redeliver' })
    failPlainly(1)
    assert.equal(await send('1', 'a').settled, true, 'the retry succeeded, so it is acknowledged')
    assert.deepEqual(handled, ['a'])
    assert.deepEqual([dispatcher.stats.handled, dispatcher.stats.failed], [1, 0])
    monitor.stop()
  })

  it('waits for a held message when a middleware before the gate gives up on it, and keeps the slot limit', async () => {
    const impatient = timeoutAfter(20)
    const { send, setDb, handled, handledAtSettle, monitor, dispatcher } = await setup({}, { before: [impatient], maxInFlight: 1 })
    await setDb(false)
    const held = send('1', 'h')
    await new Promise((resolve) => setTimeout(resolve, 40))
    assert.deepEqual(held.settlements, [], 'not settled while held, though the middleware gave up')
    await setDb(true)
    assert.equal(await held.settled, true, "then failed, and acknowledged by the 'ack' policy")
    assert.equal(handledAtSettle.get('h'), true, 'after its handler ran')
    assert.deepEqual(handled, ['h'])
    assert.equal(dispatcher.stats.failed, 1)
    const others = [send('1', 'o1', 'other'), send('2', 'o2', 'other')]
    await Promise.all(others.map((m) => m.settled))
    assert.equal(dispatcher.stats.inFlight, 0, 'every slot given back')
    monitor.stop()
  })

  it('releases messages held before the monitor started once it has', async () => {
    const { send, handled, monitor, gate } = await setup({ maxHoldMs: 30_000 }, { start: false })
    const message = send('1', 'a')
    await tick()
    assert.equal(gate.stats.held, 1)
    await monitor.start()
    assert.equal(await message.settled, true)
    assert.deepEqual(handled, ['a'])
    assert.equal(gate.stats.rejected['max-hold-ms'], 0)
    monitor.stop()
  })

  it('counts a held message before giving its slot away, so maxHeld and the order hold with one slot', async () => {
    const { send, handled, monitor, gate, failOutages, slowChecks } = await setup({ maxHeld: 1 }, { maxInFlight: 1 })
    failOutages(1)
    const answer = slowChecks()
    const first = send('1', 'first')
    const second = send('2', 'second')
    await tick()
    assert.equal(gate.stats.held, 1, 'first is held after its outage; second was turned away, not held too')
    assert.equal(gate.stats.rejected['max-held'], 1)
    assert.deepEqual(handled, [], 'second did not overtake first')
    answer()
    await Promise.all([first.settled, second.settled])
    assert.deepEqual(handled, ['first'])
    monitor.stop()
  })

  it('waits for the handler behind a middleware after the gate that does not await next(ctx)', async () => {
    const careless: MiddlewareFunction = (ctx, next) => {
      void next(ctx)
    }
    const monitor = new HealthMonitor()
    let up = false
    monitor.register({ name: 'db', rise: 1, fall: 1, intervalMs: 60_000, check: () => {
      if (!up) throw new Error('down')
    } })
    await monitor.start()
    const done: string[] = []
    const router = new Router()
    router.on('jobs/{id}', async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 10))
      if (ctx.params.id === 'bad') throw new Error('handler failed')
      done.push(ctx.params.id)
    }, { qos: 1, middleware: [healthGate('db', { monitor }), careless] })
    const dispatcher = new MessageDispatcher({
      router, container: rootContainerForTests(), publish: async () => undefined, logger: silentLogger,
      onError: 'redeliver', maxInFlight: 10, maxQueued: 100, ordering: 'none',
    })
    const good = inbound('jobs/good', '')
    const bad = inbound('jobs/bad', '')
    dispatcher.receive(good)
    dispatcher.receive(bad)
    await tick()
    up = true
    await monitor.check('db')
    assert.equal(await good.settled, true)
    assert.deepEqual(done, ['good'], 'acknowledged after its handler finished')
    assert.equal(await bad.settled, false, "the handler's failure reached the 'redeliver' policy")
    assert.deepEqual([dispatcher.stats.handled, dispatcher.stats.failed], [1, 1])
    monitor.stop()
  })

  /** A monitor with `db`, switched by the test, and a dispatcher over `router`. */
  async function bench(router: (monitor: HealthMonitor) => Router, options: { maxInFlight?: number; onError?: ErrorPolicy } = {}) {
    const monitor = new HealthMonitor()
    const up: Record<string, boolean> = { db: false, api: false }
    for (const name of ['db', 'api']) {
      monitor.register({ name, rise: 1, fall: 1, intervalMs: 60_000, check: () => {
        if (!up[name]) throw new Error('down')
      } })
    }
    await monitor.start()
    const dispatcher = new MessageDispatcher({
      router: router(monitor), container: rootContainerForTests(), publish: async () => undefined, logger: silentLogger,
      onError: options.onError ?? 'ack', maxInFlight: options.maxInFlight ?? 10, maxQueued: 100_000, ordering: 'none',
    })
    const recover = async (names: readonly string[] = ['db', 'api']) => {
      for (const name of names) up[name] = true
      await Promise.all(names.map((name) => monitor.check(name)))
    }
    return { monitor, dispatcher, recover }
  }

  it('cannot deadlock with a lock taken before the gate: a released message takes its slot back at once', async () => {
    let locked: Promise<void> | undefined
    const lock: MiddlewareFunction = async (ctx, next) => {
      while (locked) await locked
      let unlock!: () => void
      locked = new Promise<void>((resolve) => (unlock = resolve))
      try {
        return await next(ctx)
      } finally {
        locked = undefined
        unlock()
      }
    }
    const done: string[] = []
    const { monitor, dispatcher, recover } = await bench((monitor) =>
      new Router().on('jobs/{id}', (ctx) => {
        done.push(ctx.params.id)
      }, { qos: 1, middleware: [lock, healthGate('db', { monitor })] }), { maxInFlight: 1 })
    const a = inbound('jobs/a', '')
    const b = inbound('jobs/b', '')
    dispatcher.receive(a)
    dispatcher.receive(b)
    await tick()
    await recover()
    assert.deepEqual(await Promise.all([a.settled, b.settled]), [true, true])
    assert.deepEqual(done, ['a', 'b'])
    assert.equal(dispatcher.stats.inFlight, 0)
    monitor.stop()
  })

  it('waits for a handler that a timeout after the gate gave up on before settling', async () => {
    const timeout = timeoutAfter(10)
    let finished = false
    const { monitor, dispatcher, recover } = await bench((monitor) =>
      new Router().on('jobs/{id}', async () => {
        await new Promise((resolve) => setTimeout(resolve, 50))
        finished = true
      }, { qos: 1, middleware: [healthGate('db', { monitor }), timeout] }))
    await recover()
    const message = inbound('jobs/1', '')
    let finishedAtSettle: boolean | undefined
    const settle = message.settle.bind(message)
    dispatcher.receive({ ...message, settle: (ack) => ((finishedAtSettle = finished), settle(ack)) })
    assert.equal(await message.settled, true, "failed by the timeout, acknowledged by 'ack'")
    assert.equal(finishedAtSettle, true, 'only once the handler finished')
    monitor.stop()
  })

  it('settles by the outer of two gates, and waits for the inner one behind a middleware that does not await', async () => {
    const careless: MiddlewareFunction = (ctx, next) => {
      void next(ctx)
    }
    const done: string[] = []
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    const { monitor, dispatcher, recover } = await bench((monitor) =>
      new Router().on('jobs/{id}', (ctx) => {
        done.push(ctx.params.id)
      }, { qos: 1, middleware: [healthGate('db', { monitor }), careless, healthGate('api', { monitor })] }), { maxInFlight: 1 })
    const message = inbound('jobs/1', '')
    dispatcher.receive(message)
    await tick()
    await recover()
    assert.equal(await message.settled, true)
    assert.deepEqual(done, ['1'], 'handled before it was acknowledged')
    const expiring = await bench((monitor) =>
      new Router().on('jobs/{id}', () => undefined, {
        qos: 1, middleware: [healthGate('db', { monitor }), careless, healthGate('api', { monitor, maxHoldMs: 30 })],
      }), { onError: 'redeliver' })
    await expiring.recover(['db'])
    const held = inbound('jobs/2', '')
    expiring.dispatcher.receive(held)
    assert.equal(await held.settled, false, "the inner gate's rejection reached the 'redeliver' policy")
    await tick()
    process.off('unhandledRejection', onUnhandled)
    assert.deepEqual(unhandled, [])
    monitor.stop()
    expiring.monitor.stop()
  })

  it('holds a message once when a retrying timeout before the gate calls it again while held', async () => {
    const timeout = timeoutAfter(10)
    let runs = 0
    let running = 0
    let most = 0
    const { monitor, dispatcher, recover } = await bench((monitor) => {
      const router = new Router()
      router.on('jobs/{id}', () => {
        runs++
      }, { qos: 1, middleware: [retry, timeout, healthGate('db', { monitor })] })
      router.on('free/{id}', async () => {
        most = Math.max(most, ++running)
        await new Promise((resolve) => setTimeout(resolve, 5))
        running--
      }, { qos: 1 })
      return router
    }, { maxInFlight: 1 })
    const job = inbound('jobs/1', '')
    dispatcher.receive(job)
    await new Promise((resolve) => setTimeout(resolve, 30))
    const free = Array.from({ length: 3 }, (_, i) => inbound(`free/${i}`, ''))
    for (const message of free) dispatcher.receive(message)
    await Promise.all(free.map((m) => m.settled))
    assert.equal(most, 1, 'the held message gave back one slot, not two')
    await recover()
    assert.equal(await job.settled, true)
    assert.equal(runs, 1, 'handled once')
    await tick()
    assert.equal(dispatcher.stats.inFlight, 0)
    monitor.stop()
  })

  it('holds a burst of queued messages without nesting a stack frame per message', async () => {
    let release!: () => void
    const busy = new Promise<void>((resolve) => (release = resolve))
    const { monitor, dispatcher, recover } = await bench((monitor) => {
      const router = new Router()
      router.on('slow', () => busy, { qos: 1 })
      router.on('jobs/{id}', () => undefined, { qos: 1, middleware: [healthGate('db', { monitor, maxHeld: 5000 })] })
      return router
    }, { maxInFlight: 1 })
    const slow = inbound('slow', '')
    dispatcher.receive(slow)
    const burst = Array.from({ length: 3000 }, (_, i) => inbound(`jobs/${i}`, ''))
    for (const message of burst) dispatcher.receive(message)
    release()
    await slow.settled
    await tick()
    assert.equal(burst.filter((m) => m.settlements.length > 0).length, 0, 'none settled while the dependency is down')
    await recover()
    assert.ok((await Promise.all(burst.map((m) => m.settled))).every(Boolean))
    assert.equal(dispatcher.stats.handled, 3001)
    monitor.stop()
  })

  it('skips the error policy for a message abandoned by stop: no dead letter, not acknowledged', async () => {
    const published: string[] = []
    const monitor = new HealthMonitor()
    monitor.register({ name: 'db', rise: 1, fall: 1, intervalMs: 60_000, check: () => {
      throw new Error('down')
    } })
    await monitor.start()
    const gate = healthGate('db', { monitor })
    const router = new Router()
    router.on('jobs/{id}', () => undefined, { qos: 1, middleware: [gate] })
    const dispatcher = new MessageDispatcher({
      router, container: rootContainerForTests(), publish: async (topic) => {
        published.push(topic)
      }, logger: silentLogger,
      onError: { deadLetter: 'dl' }, maxInFlight: 10, maxQueued: 100, ordering: 'none',
    })
    const message = inbound('jobs/1', '')
    dispatcher.receive(message)
    await tick()
    dispatcher.abandon()
    gate.close()
    assert.equal(await message.settled, false)
    assert.deepEqual(published, [])
    assert.equal(dispatcher.stats.failed, 0)
    monitor.stop()
  })

  it("gives a held message's handler slot to other messages meanwhile", async () => {
    const { send, setDb, handled, gate, monitor } = await setup({}, { maxInFlight: 2 })
    await setDb(false)
    const held = ['h1', 'h2', 'h3', 'h4'].map((body, i) => send(String(i), body))
    const other = send('1', 'free', 'other')
    assert.equal(await other.settled, true, 'an ungated route runs although more messages are held than there are slots')
    assert.deepEqual(handled, ['free'])
    assert.equal(gate.stats.held, 4)
    await setDb(true)
    await Promise.all(held.map((m) => m.settled))
    assert.deepEqual(handled.slice(1), ['h1', 'h2', 'h3', 'h4'])
    monitor.stop()
  })

  it('ends every hold when closed, and an abandoned dispatcher leaves those messages unacknowledged', async () => {
    const { send, setDb, handled, gate, dispatcher, monitor } = await setup()
    await setDb(false)
    const held = [send('1', 'a'), send('2', 'b')]
    await tick()
    dispatcher.abandon()
    gate.close()
    assert.deepEqual(await Promise.all(held.map((m) => m.settled)), [false, false], "not acknowledged, though the policy is 'ack'")
    assert.deepEqual(handled, [])
    assert.equal(gate.stats.rejected.stopped, 2)
    assert.equal(gate.stats.held, 0)
    monitor.stop()
  })

  it('rejects at once in reject mode, and the error policy decides', async () => {
    const { send, setDb, handled, monitor, gate } = await setup({ mode: 'reject' }, { onError: 'redeliver' })
    await setDb(false)
    const message = send('1', 'x')
    assert.equal(await message.settled, false, "'redeliver' leaves it unacknowledged")
    assert.deepEqual(handled, [])
    assert.equal(gate.stats.rejected.unhealthy, 1)
    monitor.stop()
  })

  it('rejects beyond maxHeld and after maxHoldMs with DependencyUnavailableError', async () => {
    const { send, setDb, handled, monitor, gate } = await setup({ maxHeld: 2, maxHoldMs: 80 })
    await setDb(false)
    const held = [send('1', 'a'), send('2', 'b')]
    const third = send('3', 'c')
    assert.equal(await third.settled, true, "the default 'ack' policy acknowledges a rejected message")
    assert.equal(gate.stats.rejected['max-held'], 1)
    const started = Date.now()
    await Promise.all(held.map((m) => m.settled))
    assert.ok(Date.now() - started >= 60, 'held until maxHoldMs')
    assert.equal(gate.stats.rejected['max-hold-ms'], 2)
    assert.deepEqual(handled, [])
    monitor.stop()
  })

  it('holds and reruns a handler that met an outage before the check noticed it', async () => {
    const { send, handled, monitor, gate, failOutages } = await setup()
    failOutages(2)
    const message = send('1', 'a')
    assert.equal(await message.settled, true)
    assert.deepEqual(handled, ['a'], 'handled once, after two outage failures')
    assert.equal(gate.stats.outageRetries, 2)
    monitor.stop()
  })

  it('rethrows other handler errors at once', async () => {
    const monitor = new HealthMonitor()
    monitor.register({ name: 'db', check: () => undefined })
    await monitor.start()
    const gate = healthGate('db', { monitor })
    let error: unknown
    const ctx = { route: { pattern: 'x' } } as never
    await gate.handle(ctx, async () => {
      throw new Error('bug')
    }).catch((e: unknown) => (error = e))
    assert.equal((error as Error).message, 'bug')
    assert.equal(gate.stats.outageRetries, 0)
    monitor.stop()
  })

  it('describes why in the error and names bad options', async () => {
    const monitor = new HealthMonitor()
    monitor.register({ name: 'db', check: () => Promise.reject(new Error('refused')), fall: 1 })
    await monitor.start()
    const gate = healthGate(['db'], { monitor, mode: 'reject' })
    const error = await gate.handle({ route: { pattern: 'orders/{id}' } } as never, async () => undefined).catch((e: unknown) => e)
    assert.ok(error instanceof DependencyUnavailableError)
    assert.equal(error.reason, 'unhealthy')
    assert.match(error.message, /orders\/\{id\}: not handled because db is unhealthy \(refused\)/)
    monitor.stop()
    assert.throws(() => healthGate([]), (e: unknown) => e instanceof InvalidOptionError && e.field === 'healthGate.dependencies')
    assert.throws(() => healthGate('db', { mode: 'drop' as never }), /healthGate\.mode/)
    assert.throws(() => healthGate('db', { maxHeld: 0 }), /healthGate\.maxHeld/)
    assert.throws(() => healthGate('db', { maxHoldMs: -1 }), /healthGate\.maxHoldMs/)
    assert.throws(() => healthGate('db', { maxHoldMs: 3e9 }), /healthGate\.maxHoldMs/, 'longer than a timer can wait')
  })
})
