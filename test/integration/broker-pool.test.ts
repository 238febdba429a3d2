import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync } from 'mqtt'
import { Application, isConnectionFailedError, isInvalidOptionError, isInvalidTopicError, isTransportClosedError, Router, silentLogger } from '../../src/index.js'
import { freePort, startTopology, type Topology } from '../../src/testing/index.js'
import {
  BrokerPool, isOfflineBufferFullError, isPublishAbandonedError, isPublishDroppedError, isQos2InterruptedError, type BrokerPoolOptions,
  type ActiveBrokerEvent, type FailoverEvent,
} from '../../plugins/mqtt/index.js'
import { IdCounter } from '../support/id-counter.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'
import { createTlsMaterial, mosquittoTlsListener } from '../support/tls-certificates.js'

/** Publishes `total` QoS 1 messages at about `perSecond`, ids as payloads; calls `at(sent)` along the way. */
async function publishAtRate(pool: BrokerPool, total: number, perSecond: number, at: (sent: number) => void): Promise<string[]> {
  const ids: string[] = []
  const acks: Promise<void>[] = []
  const perTick = Math.max(1, Math.round(perSecond / 100))
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      for (let i = 0; i < perTick && ids.length < total; i++) {
        const id = String(ids.length)
        ids.push(id)
        acks.push(pool.publish(`load/${id}`, id, { qos: 1 }))
        at(ids.length)
      }
      if (ids.length >= total) {
        clearInterval(timer)
        resolve()
      }
    }, 10)
  })
  await Promise.all(acks)
  return ids
}

describe('BrokerPool on real Mosquitto brokers', function () {
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  beforeEach(async () => {
    topology = await startTopology({ brokers: 3 })
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
    await topology?.stop()
  })

  // Failover mechanics are tested on independent Mosquittos, counting at every broker; the topology check would refuse them.
  function pool(options: Partial<BrokerPoolOptions> = {}): BrokerPool {
    const created = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), mode: 'failover', topologyCheck: false, logger: silentLogger, ...options })
    cleanup.push(() => created.close())
    return created
  }

  function app(router: Router, transport: BrokerPool): Application {
    const created = Application.create({ router, transport, logger: silentLogger })
    cleanup.push(() => created.stop())
    return created
  }

  it('loses no message when the active broker is SIGKILLed under 1000 QoS 1 messages/s, and routes keep receiving', async () => {
    const counter = await IdCounter.start(topology.brokers.map((b) => b.url), 'load/#')
    cleanup.push(() => counter.close())
    const transport = pool({ strategy: 'priority' })
    let commandHandled!: (n: string) => void
    const command = new Promise<string>((resolve) => (commandHandled = resolve))
    const application = app(new Router().on('commands/{n}', (ctx) => commandHandled(ctx.params.n), { qos: 1 }), transport)
    await application.start()
    assert.equal(transport.stats.active, `127.0.0.1:${topology.brokers[0]!.port}`, 'priority starts on the first broker')
    const failovers: FailoverEvent[] = []
    transport.onFailover((e) => failovers.push(e))
    let killed: Promise<void> | undefined
    const ids = await publishAtRate(transport, 3000, 1000, (sent) => {
      if (sent === 1000) killed = topology.brokers[0]!.kill()
    })
    await killed
    await counter.waitFor(ids)
    assert.deepEqual(counter.missing(ids), [])
    assert.equal(failovers.length, 1)
    assert.equal(failovers[0]!.from, `127.0.0.1:${topology.brokers[0]!.port}`)
    assert.equal(transport.stats.acknowledged, 3000)

    const active = topology.brokers.find((b) => transport.stats.active === `127.0.0.1:${b.port}`)!
    const device = await connectAsync(active.url, { clientId: 'device-after-failover' })
    cleanup.push(() => device.endAsync())
    await device.publishAsync('commands/7', 'go', { qos: 1 })
    assert.equal(await command, '7')
  })

  it("in 'all' mode, handles messages published directly to each of 3 independent brokers", async () => {
    const transport = pool({ mode: 'all' })
    const handled = new Set<string>()
    let resolveAll!: () => void
    const all = new Promise<void>((resolve) => (resolveAll = resolve))
    const application = app(new Router().on('telemetry/{broker}/{n}', (ctx) => {
      handled.add(`${ctx.params.broker}/${ctx.params.n}`)
      if (handled.size === 30) resolveAll()
    }, { qos: 1 }), transport)
    await application.start()
    await Promise.all(topology.brokers.map(async (broker) => {
      const device = await connectAsync(broker.url, { clientId: `device-${broker.name}` })
      for (let n = 0; n < 10; n++) await device.publishAsync(`telemetry/${broker.name}/${n}`, 'x', { qos: 1 })
      await device.endAsync()
    }))
    await all
    assert.equal(handled.size, 30)
    assert.deepEqual(transport.stats.brokers.map((b) => b.connected), [true, true, true])
  })

  it('recovers by itself after every broker was down for 10 s, idle meanwhile, and delivers what was buffered', async function () {
    this.timeout(40_000)
    const transport = pool({ strategy: 'priority' })
    const received = new Set<string>()
    let resolveAll!: () => void
    const all = new Promise<void>((resolve) => (resolveAll = resolve))
    const application = app(new Router().on('buffered/{n}', (ctx) => {
      received.add(ctx.params.n)
      if (received.size === 100) resolveAll()
    }, { qos: 1 }), transport)
    await application.start()
    const allDown = new Promise<void>((resolve) => transport.onAllDown(() => resolve()))
    await Promise.all(topology.brokers.map((b) => b.kill()))
    await allDown
    assert.equal(transport.connected, false)
    const acks = Array.from({ length: 100 }, (_, n) => transport.publish(`buffered/${n}`, String(n), { qos: 1 }))
    const probesBefore = transport.stats.probes
    const cpuBefore = process.cpuUsage()
    const wallBefore = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 10_000))
    const cpu = process.cpuUsage(cpuBefore)
    const wallMs = performance.now() - wallBefore
    // Idle means a probe per broker per interval (750 ms by default, -20 % jitter), after 5 s of probes every 100 ms
    // for a broker whose connection was just lost; not a retry loop. And no spinning, which would take a whole core
    // (the bound leaves room for a busy CI machine: this is not a speed figure).
    const probes = transport.stats.probes - probesBefore
    const probeBound = topology.brokers.length * (5000 / 100 + Math.ceil(wallMs / (750 * 0.8)) + 1)
    assert.ok(probes <= probeBound, `the pool probed ${probes} times in ${Math.round(wallMs)} ms, more than ${probeBound}`)
    const cpuShare = (cpu.user + cpu.system) / 1000 / wallMs
    assert.ok(cpuShare < 0.5, `the pool used ${(cpuShare * 100).toFixed(1)} % of a core while every broker was down`)
    assert.equal(transport.stats.buffered, 100)
    await Promise.all(topology.brokers.map((b) => b.restart()))
    await Promise.all(acks)
    await all
    // The brokers came back one after another: the pool may be failing back to the first one just now.
    if (!transport.connected) await new Promise((resolve) => transport.onActiveChange(resolve))
    assert.equal(transport.connected, true)
  })

  it('fails back to the first broker under priority once it recovers, with one failover and no second connection', async () => {
    const transport = pool({ strategy: 'priority' })
    const counter = await IdCounter.start(topology.brokers.map((b) => b.url), 'fb/#')
    cleanup.push(() => counter.close())
    await transport.connect(() => undefined)
    const [first, second] = topology.brokers
    const failedOver = new Promise<FailoverEvent>((resolve) => transport.onFailover(resolve))
    await first!.kill()
    assert.equal((await failedOver).to, `127.0.0.1:${second!.port}`)
    const downs: string[] = []
    transport.onBrokerDown((e) => downs.push(e.broker))
    const back = new Promise<ActiveBrokerEvent>((resolve) => transport.onActiveChange((e) => e.reason === 'handover' && resolve(e)))
    await first!.restart()
    assert.deepEqual(await back, { from: `127.0.0.1:${second!.port}`, to: `127.0.0.1:${first!.port}`, reason: 'handover' })
    // The pool may be back on the restarted broker before the test's own subscriber there is.
    await counter.subscribed()
    const ids = Array.from({ length: 20 }, (_, i) => String(i))
    await Promise.all(ids.map((id) => transport.publish(`fb/${id}`, id, { qos: 1 })))
    await counter.waitFor(ids)
    assert.equal(transport.stats.failovers, 1, 'failing back is a planned handover, not a failover')
    assert.deepEqual(downs, [], 'no broker was taken for dead by the handover')
  })

  it('rejects a publish to a bad topic before it reaches a broker', async () => {
    const transport = pool({ protocolVersion: 4, strategy: 'round-robin' })
    await transport.connect(() => undefined)
    await assert.rejects(transport.publish('devices/+/cmd', 'x', { qos: 1 }), isInvalidTopicError)
    await assert.rejects(transport.publish('', 'x', { qos: 1 }), isInvalidTopicError)
    assert.equal(transport.stats.failovers, 0)
  })

  /** A connected pool, the brokers it declared down, and a counter of what reaches the brokers on ok/#. */
  async function watchedPool() {
    const transport = pool()
    const downs: string[] = []
    transport.onBrokerDown((event) => downs.push(event.broker))
    const counter = await IdCounter.start(topology.brokers.map((b) => b.url), 'ok/#')
    cleanup.push(() => counter.close())
    await transport.connect(() => undefined)
    return { transport, downs, counter }
  }

  it('refuses topics with control characters or Unicode non-characters before any broker sees them, at QoS 0 and 1, and no broker goes down', async () => {
    const { transport, downs, counter } = await watchedPool()
    for (const topic of ['a\u0001b', 'a\uFFFFb', 'a\u007Fb', 'a\u0085b', 'a\uFDD0b', 'a\uD800b', 'a\u{10FFFF}b', 'a\nb']) {
      for (const qos of [0, 1] as const) await assert.rejects(transport.publish(topic, 'x', { qos }), isInvalidTopicError, `${JSON.stringify(topic)} at QoS ${qos}`)
    }
    await transport.publish('ok/1', '1', { qos: 1 })
    await counter.waitFor(['1'])
    assert.deepEqual(downs, [])
    assert.equal(transport.stats.failovers, 0)
    assert.ok(transport.stats.brokers.every((broker) => broker.state === 'healthy'))
  })

  it('fails to connect with a named error, and no unhandled rejection, when MQTT.js cannot even write the CONNECT (a 70 000-byte user name from the environment)', async () => {
    const unhandled: unknown[] = []
    const record = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', record)
    try {
      const transport = new BrokerPool({
        brokers: [{ url: topology.brokers[0]!.url, usernameEnv: 'HUGE_USER' }], env: { HUGE_USER: 'x'.repeat(70_000) },
        mode: 'failover', topologyCheck: false, logger: silentLogger, connectTimeoutMs: 200, startTimeoutMs: 600,
      })
      cleanup.push(() => transport.close())
      await assert.rejects(transport.connect(() => undefined), isConnectionFailedError)
      // Every CONNACK wait the attempts started has timed out by now.
      await new Promise((resolve) => setTimeout(resolve, 400))
      assert.deepEqual(unhandled, [])
    } finally {
      process.off('unhandledRejection', record)
    }
  })

  it('refuses a publish whose user property a broker would drop the connection over, and keeps every broker up', async () => {
    const { transport, downs, counter } = await watchedPool()
    await assert.rejects(transport.publish('ok/0', '0', { qos: 1, properties: { userProperties: { fw: '1.0\u0000' } } }), isInvalidOptionError)
    await assert.rejects(transport.publish('ok/0', '0', { qos: 0, properties: { contentType: 'text/\u0000' } }), isInvalidOptionError)
    await transport.publish('ok/1', '1', { qos: 1 })
    await counter.waitFor(['1'])
    assert.deepEqual(downs, [])
    assert.equal(transport.stats.abandoned, 0)
  })

  it('settles connect() at once with TransportClosedError when close() is called while it waits', async () => {
    await Promise.all(topology.brokers.map((b) => b.kill()))
    const transport = pool()
    const connecting = transport.connect(() => undefined)
    await transport.close()
    await assert.rejects(connecting, isTransportClosedError)
  })

  it('refuses publishes beyond the offline buffer with a named error, and drops QoS 0 only when told to', async () => {
    const transport = pool({ strategy: 'priority', offlineBuffer: { maxMessages: 3, qos0: 'drop' } })
    await transport.connect(() => undefined)
    const allDown = new Promise<void>((resolve) => transport.onAllDown(() => resolve()))
    await Promise.all(topology.brokers.map((b) => b.kill()))
    await allDown
    const kept = [1, 2, 3].map((n) => transport.publish(`t/${n}`, 'x', { qos: 1 }))
    await assert.rejects(transport.publish('t/4', 'x', { qos: 1 }), isOfflineBufferFullError)
    await assert.rejects(transport.publish('t/5', 'x', { qos: 0 }), isPublishDroppedError)
    assert.equal(transport.stats.buffered, 3)
    assert.equal(transport.stats.rejectedBufferFull, 1)
    assert.equal(transport.stats.droppedQos0, 1)
    await topology.brokers[1]!.restart()
    await Promise.all(kept)
  })
})

describe('BrokerPool against faults in the network and TLS', function () {
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })

  /** Two brokers, the first behind a fault proxy; a connected priority pool, so the proxied one is active. */
  async function poolBehindProxy(): Promise<{ topology: Topology; proxy: TcpFaultProxy; transport: BrokerPool }> {
    const topology = await startTopology({ brokers: 2 })
    cleanup.push(() => topology.stop())
    const proxy = await TcpFaultProxy.start({ target: { host: topology.brokers[0]!.host, port: topology.brokers[0]!.port } })
    cleanup.push(() => proxy.close())
    const transport = new BrokerPool({ brokers: [proxy.url(), topology.brokers[1]!.url], mode: 'failover', topologyCheck: false, strategy: 'priority', logger: silentLogger })
    cleanup.push(() => transport.close())
    await transport.connect(() => undefined)
    return { topology, proxy, transport }
  }

  it('declares a blackholed broker down within 3 s with default settings and fails over', async () => {
    const { topology, proxy, transport } = await poolBehindProxy()
    assert.equal(transport.stats.active, `127.0.0.1:${proxy.port}`)
    const down = new Promise<string>((resolve) => transport.onBrokerDown((e) => resolve(e.broker)))
    const failover = new Promise<FailoverEvent>((resolve) => transport.onFailover(resolve))
    const blackholedAt = performance.now()
    proxy.setMode('blackhole')
    assert.equal(await down, `127.0.0.1:${proxy.port}`)
    const detectedMs = performance.now() - blackholedAt
    assert.ok(detectedMs < 3000, `declared down after ${detectedMs.toFixed(0)} ms`)
    assert.equal((await failover).to, `127.0.0.1:${topology.brokers[1]!.port}`)
    await transport.publish('after/blackhole', 'x', { qos: 1 })
  })

  it('rejects a QoS 2 publish in flight when its broker is lost instead of carrying it to another', async () => {
    const { topology, proxy, transport } = await poolBehindProxy()
    proxy.setMode('blackhole')
    const exactlyOnce = transport.publish('billing/1', 'invoice', { qos: 2 })
    const atLeastOnce = transport.publish('billing/2', 'invoice', { qos: 1 })
    await assert.rejects(exactlyOnce, isQos2InterruptedError)
    await atLeastOnce
    assert.equal(transport.stats.qos2Interrupted, 1)
    assert.equal(transport.stats.active, `127.0.0.1:${topology.brokers[1]!.port}`)
  })

  it('abandons a message the brokers keep dropping the connection over, while other publishes get through', async () => {
    const topology = await startTopology({ brokers: 3, brokerConfig: 'max_packet_size 2048' })
    cleanup.push(() => topology.stop())
    const transport = new BrokerPool({ brokers: topology.brokers.map((b) => b.url), protocolVersion: 4, logger: silentLogger })
    cleanup.push(() => transport.close())
    await transport.connect(() => undefined)
    const poison = transport.publish('big/1', Buffer.alloc(8192), { qos: 1 })
    await assert.rejects(poison, isPublishAbandonedError)
    await transport.publish('small/1', 'x', { qos: 1 })
    assert.equal(transport.stats.abandoned, 1)
  })

  it('connects over MQTT on WebSockets', async () => {
    const topology = await startTopology({ brokers: 1, websockets: true })
    cleanup.push(() => topology.stop())
    const transport = new BrokerPool({ brokers: [topology.brokers[0]!.wsUrl!], logger: silentLogger })
    let handled!: (topic: string) => void
    const received = new Promise<string>((resolve) => (handled = resolve))
    const application = Application.create({ router: new Router().on('ws/{n}', (ctx) => handled(ctx.topic), { qos: 1 }), transport, logger: silentLogger })
    cleanup.push(() => application.stop())
    await application.start()
    await transport.publish('ws/1', 'x', { qos: 1 })
    assert.equal(await received, 'ws/1')
  })

  it('connects to a TLS broker with its CA, and fails clearly with the wrong one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'rmq-tls-'))
    cleanup.push(() => rm(directory, { recursive: true, force: true }))
    const material = await createTlsMaterial(directory)
    const tlsPort = await freePort()
    const topology = await startTopology({ brokers: 1, brokerConfig: mosquittoTlsListener(tlsPort, material) })
    cleanup.push(() => topology.stop())
    const url = `mqtts://127.0.0.1:${tlsPort}`

    const transport = new BrokerPool({ brokers: [{ url, tls: { ca: material.caPem } }], logger: silentLogger })
    let handled!: (topic: string) => void
    const received = new Promise<string>((resolve) => (handled = resolve))
    const application = Application.create({ router: new Router().on('secure/{n}', (ctx) => handled(ctx.topic), { qos: 1 }), transport, logger: silentLogger })
    cleanup.push(() => application.stop())
    await application.start()
    await transport.publish('secure/1', 'x', { qos: 1 })
    assert.equal(await received, 'secure/1')

    const wrong = new BrokerPool({ brokers: [{ url, tls: { ca: material.otherCaPem } }], startTimeoutMs: 2000, logger: silentLogger })
    cleanup.push(() => wrong.close())
    const error = await wrong.connect(() => undefined).then(() => undefined, (e: unknown) => e)
    assert.ok(isConnectionFailedError(error), `got ${String(error)}`)
    assert.match(error.message, /issuer certificate|self-signed|certificate/i)
    assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${tlsPort}`))
  })
})
