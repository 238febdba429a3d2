import assert from 'node:assert/strict'
import { connect, connectAsync, type IConnackPacket, type MqttClient } from 'mqtt'
import {
  Application, BrokerPool, HealthMonitor, isBrokerTopologyError, LoadBalancingMetrics, Router, silentLogger, type BrokerPoolOptions, type LogFields, type Logger,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { ChildApp } from '../support/child-app.js'

/** Resolves once every id in `ids` is in `seen`, checking on each `notify()`; rejects naming the missing ones after `ms`. */
class Tally {
  readonly seen = new Map<string, number>()
  #waiters: (() => void)[] = []

  add(id: string): void {
    this.seen.set(id, (this.seen.get(id) ?? 0) + 1)
    for (const waiter of this.#waiters) waiter()
  }

  async all(ids: readonly string[], ms: number, also: ReadonlySet<string> = new Set()): Promise<void> {
    const missing = (): string[] => ids.filter((id) => !this.seen.has(id) && !also.has(id))
    if (missing().length === 0) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${missing().length} of ${ids.length} never handled: ${missing().slice(0, 10).join(', ')}`)), ms)
      this.#waiters.push(() => {
        if (missing().length > 0) return
        clearTimeout(timer)
        resolve()
      })
    })
  }
}

function recordingLogger(): Logger & { lines: [string, string, LogFields | undefined][] } {
  const lines: [string, string, LogFields | undefined][] = []
  const at = (level: string) => (message: string, fields?: LogFields) => void lines.push([level, message, fields])
  return { lines, debug: () => undefined, info: at('info'), warn: at('warn'), error: at('error') }
}

describe('BrokerPool sessions on real Mosquitto brokers: nothing stranded when instances go', function () {
  this.timeout(60_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
    await topology?.stop()
  })

  async function devices(): Promise<MqttClient[]> {
    const clients = await Promise.all(topology.brokers.map((b, i) => connectAsync(b.url, { clientId: `device-${i}-${process.pid}` })))
    cleanup.push(() => Promise.all(clients.map((c) => c.endAsync(true))))
    return clients
  }

  /** Publishes jobs/<id> for each id, spread over the devices (so over the brokers). */
  async function publish(clients: readonly MqttClient[], ids: readonly string[]): Promise<void> {
    await Promise.all(ids.map((id, i) => clients[i % clients.length]!.publishAsync(`jobs/${id}`, id, { qos: 1 })))
  }

  /** An instance in this process on the same route, counting what it handles; stopped after the test. */
  function survivor(options: Partial<BrokerPoolOptions>, tally: Tally): { pool: BrokerPool; app: Application } {
    const pool = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), logger: silentLogger, ...options })
    const app = Application.create({ router: new Router().on('jobs/{id}', (ctx) => tally.add(ctx.params.id), { qos: 1, shared: true, payload: 'text' }), transport: pool, logger: silentLogger })
    cleanup.push(() => app.stop())
    return { pool, app }
  }

  function child(options: Partial<BrokerPoolOptions>, mode: 'hang' | 'finish'): ChildApp {
    const app = ChildApp.start('pool-app.js', [JSON.stringify({ brokers: topology.brokers.map((b) => b.url), ...options }), mode])
    cleanup.push(() => app.signal('SIGKILL'))
    return app
  }

  /** Whether the broker still has a session for `clientId` (the CONNACK says; the probe's own session ends at once). */
  async function sessionPresent(url: string, clientId: string): Promise<boolean> {
    const client = connect(url, { clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 0 }, reconnectPeriod: 0 })
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    })
    await client.endAsync()
    return connack.sessionPresent
  }

  it('adopts the session of an instance SIGKILLed while it held messages, and handles every one of them', async () => {
    topology = await startTopology({ brokers: 2 })
    const crashed = child({ clientId: 'worker-a', sessions: { orphanAfterSeconds: 2 } }, 'hang')
    await crashed.next((e) => e.event === 'ready')
    const tally = new Tally()
    const { pool, app } = survivor({ clientId: 'worker-b', sessions: { orphanAfterSeconds: 2 } }, tally)
    await app.start()
    assert.equal(pool.stats.mode, 'all', 'independent brokers: all mode by default')
    const clients = await devices()
    const ids = Array.from({ length: 200 }, (_, i) => String(i))
    await publish(clients, ids.slice(0, 100))
    await crashed.next((e) => e.event === 'handling')
    const adopted = new Promise<void>((resolve) => {
      const brokers = new Set<string>()
      pool.onSessionAdopted((e) => brokers.add(e.broker).size === 2 && resolve())
    })
    await crashed.signal('SIGKILL')
    await publish(clients, ids.slice(100))
    // Nothing the crashed instance took was ever acknowledged: the survivor must handle every id.
    await tally.all(ids, 30_000)
    await adopted
    assert.equal(pool.stats.sessions.adopted, 2, 'its session on each broker')
    const took = new Set(crashed.events.filter((e) => e.event === 'handling').map((e) => e.id))
    assert.ok(took.size > 0, 'the crashed instance had its share')
    for (const [index, broker] of topology.brokers.entries()) {
      assert.equal(await sessionPresent(broker.url, `worker-a-${index + 1}`), false, 'the adopted session was ended')
    }
  })

  it('hands the share back at a graceful stop when another instance is online: the session ends, nothing is lost', async () => {
    topology = await startTopology({ brokers: 2 })
    const leaving = child({ clientId: 'worker-a' }, 'finish')
    await leaving.next((e) => e.event === 'ready')
    const tally = new Tally()
    const { pool, app } = survivor({ clientId: 'worker-b' }, tally)
    await app.start()
    const clients = await devices()
    const ids = Array.from({ length: 300 }, (_, i) => String(i))
    await publish(clients, ids.slice(0, 150))
    assert.equal(await leaving.signal('SIGTERM'), 0)
    await publish(clients, ids.slice(150))
    const handledByLeaver = new Set(leaving.events.filter((e) => e.event === 'handled').map((e) => String(e.id)))
    await tally.all(ids, 20_000, handledByLeaver)
    assert.ok(handledByLeaver.size > 0 && handledByLeaver.size < 150, `the leaver handled its share: ${handledByLeaver.size}`)
    assert.ok(ids.slice(150).every((id) => tally.seen.has(id)), 'after it left, the survivor got everything')
    assert.equal(pool.stats.sessions.adopted, 0, 'nothing left to adopt')
    for (const [index, broker] of topology.brokers.entries()) {
      assert.equal(await sessionPresent(broker.url, `worker-a-${index + 1}`), false, 'the leaver ended its session')
    }
  })

  it('keeps the session of the only instance at a graceful stop, and the next instance (another client id) adopts it', async () => {
    topology = await startTopology({ brokers: 2 })
    const alone = child({ clientId: 'worker-a' }, 'finish')
    await alone.next((e) => e.event === 'ready')
    assert.equal(await alone.signal('SIGTERM'), 0)
    const clients = await devices()
    const ids = Array.from({ length: 60 }, (_, i) => String(i))
    // No instance runs: the kept sessions keep the share.
    await publish(clients, ids)
    const tally = new Tally()
    const { pool, app } = survivor({ clientId: 'worker-b' }, tally)
    let adopted = 0
    const both = new Promise<void>((resolve) => pool.onSessionAdopted(() => ++adopted === 2 && resolve()))
    await app.start()
    await tally.all(ids, 20_000)
    await both
    assert.equal(pool.stats.sessions.adopted, 2)
  })

  it("refuses failover mode over brokers that do not share messages, and 'auto' picks all mode", async () => {
    topology = await startTopology({ brokers: 3 })
    const router = new Router().on('jobs/{id}', () => undefined, { qos: 1 })
    const failover = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), mode: 'failover', logger: silentLogger })
    await assert.rejects(Application.create({ router, transport: failover, logger: silentLogger }).start(), (error: unknown) =>
      isBrokerTopologyError(error) && /mode: 'all' \(or 'auto'\)/.test(error.message))
    const auto = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), logger: silentLogger })
    const app = Application.create({ router, transport: auto, logger: silentLogger })
    cleanup.push(() => app.stop())
    await app.start()
    assert.deepEqual([auto.stats.mode, auto.stats.topology], ['all', 'independent'])
    assert.deepEqual(auto.stats.brokers.map((b) => b.connected), [true, true, true], 'all mode starts once every broker is subscribed')
  })

  it('in all mode, replies leave through the broker the request came from, so a device on any broker gets them', async () => {
    topology = await startTopology({ brokers: 3 })
    const pool = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), logger: silentLogger })
    const router = new Router().on('devices/{id}/ping', (ctx) => ctx.publish(`devices/${ctx.params.id}/pong`, ctx.raw, { qos: 1 }), { qos: 1 })
    const app = Application.create({ router, transport: pool, logger: silentLogger })
    cleanup.push(() => app.stop())
    await app.start()
    const clients = await devices()
    const answered = await Promise.all(clients.map(async (client, i) => {
      await client.subscribeAsync(`devices/d${i}/pong`, { qos: 1 })
      let pongs = 0
      client.on('message', () => pongs++)
      for (let n = 0; n < 10; n++) {
        const pong = new Promise((resolve) => client.once('message', resolve))
        await client.publishAsync(`devices/d${i}/ping`, String(n), { qos: 1 })
        await pong
      }
      return pongs
    }))
    assert.deepEqual(answered, [10, 10, 10])
  })

  for (const persistence of [false, true]) {
    it(`says at ERROR when a restarted broker ${persistence ? 'kept the session but lost its shared subscriptions (Mosquitto 2.0.11 with persistence)' : 'lost the session (no persistence)'}`, async () => {
      topology = await startTopology({ brokers: 1, brokerPersistence: persistence })
      const errors: string[] = []
      let said: (message: string) => void = () => undefined
      const log: Logger = {
        ...silentLogger,
        error: (message) => {
          errors.push(message)
          said(message)
        },
      }
      const pool = new BrokerPool({ brokers: [topology.brokers[0]!.url], logger: log })
      const app = Application.create({ router: new Router().on('jobs/{id}', () => undefined, { qos: 1, shared: true }), transport: pool, logger: silentLogger })
      cleanup.push(() => app.stop())
      await app.start()
      // The only broker is down for a moment first ('every broker is down'), which is not what this is about.
      const error = new Promise<string>((resolve) => (said = (message) => /session/.test(message) && resolve(message)))
      await topology.brokers[0]!.restart()
      assert.match(await error, persistence ? /kept this instance's session across a restart but not its shared subscriptions/ : /came back without this instance's session/)
      assert.equal(pool.stats.sessionsLost, 1)
    })
  }

  it('makes broker drops visible: a count per broker, one ERROR per episode, a failing broker check', async () => {
    topology = await startTopology({ brokers: 1, brokerConfig: 'max_queued_messages 5\nsys_interval 1' })
    const [broker] = topology.brokers
    const log = recordingLogger()
    const pool = new BrokerPool({ brokers: [broker!.url], logger: log })
    const app = Application.create({ router: new Router().on('jobs/{id}', () => undefined, { qos: 1 }), transport: pool, logger: silentLogger })
    cleanup.push(() => app.stop())
    await app.start()
    const monitor = new HealthMonitor({ logger: silentLogger })
    monitor.registerSource(pool)
    await monitor.start()
    cleanup.push(async () => monitor.stop())
    // Another client's persistent session, offline, whose queue overflows: the broker accepts and drops.
    const sleeper = await connectAsync(broker!.url, { clientId: 'sleeper', clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } })
    await sleeper.subscribeAsync('parked/#', { qos: 1 })
    await sleeper.endAsync()
    const device = (await devices())[0]!
    const dropped = new Promise<void>((resolve) => monitor.onChange((change) => change.to === 'unhealthy' && resolve()))
    await Promise.all(Array.from({ length: 30 }, (_, i) => device.publishAsync(`parked/${i}`, 'x', { qos: 1 })))
    await dropped
    assert.equal(pool.stats.brokers[0]!.dropped, 25)
    assert.match(monitor.summary().checks[0]!.lastError!, /dropped 25 messages/)
    assert.equal(log.lines.filter(([level, message]) => level === 'error' && /dropping messages/.test(message)).length, 1)
    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    metrics.observePool(pool)
    assert.match(await metrics.registry.metrics(), /routemq_pool_backend_dropped_messages_total\{pool="mqtt",backend="127\.0\.0\.1:\d+"\} 25/)
  })
})
