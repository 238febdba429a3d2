import assert from 'node:assert/strict'
import { connect, type MqttClient } from 'mqtt'
import { Application, BrokerPool, isBrokerTopologyError, Router, silentLogger, type FailoverEvent } from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'

describe('BrokerPool on a real 3-node NATS cluster with MQTT (a clustered broker)', function () {
  this.timeout(120_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []
  before(async function () {
    this.timeout(120_000)
    topology = await startTopology({ brokers: 3, brokerKind: 'nats' })
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(() => topology?.stop())

  const urls = (): string[] => topology.brokers.map((b) => b.url)

  it("finds that the nodes share messages: 'auto' runs failover mode, and shared subscriptions, which NATS lacks, are refused", async () => {
    const pool = new BrokerPool({ brokers: urls(), protocolVersion: 4, clientId: 'cluster-check', logger: silentLogger })
    const app = Application.create({ router: new Router().on('jobs/{id}', () => undefined, { qos: 1, shared: true }), transport: pool, logger: silentLogger })
    cleanup.push(() => app.stop())
    await assert.rejects(app.start(), (error: unknown) => isBrokerTopologyError(error) && /\$share/.test(error.message))
    assert.deepEqual([pool.stats.mode, pool.stats.topology], ['failover', 'cluster'])
  })

  it('loses nothing a node acknowledged when the node the app is on is SIGKILLed, with its persistent session', async () => {
    const pool = new BrokerPool({ brokers: urls(), protocolVersion: 4, clientId: 'cluster-app', logger: silentLogger })
    const seen = new Set<string>()
    let waiting: (() => void) | undefined
    const app = Application.create({
      router: new Router().on('jobs/{id}', (ctx) => {
        seen.add(ctx.params.id)
        waiting?.()
      }, { qos: 1, payload: 'text' }),
      transport: pool,
      logger: silentLogger,
    })
    cleanup.push(() => app.stop())
    await app.start()
    assert.equal(pool.stats.mode, 'failover')
    const active = topology.brokers.find((b) => pool.stats.active === `127.0.0.1:${b.port}`)!
    const failedOver = new Promise<FailoverEvent>((resolve) => pool.onFailover(resolve))
    // Devices on every node, reconnecting by themselves; only what a node acknowledged counts.
    const devices: MqttClient[] = topology.brokers.map((b, i) => connect(b.url, { clientId: `device-${i}`, protocolVersion: 4, reconnectPeriod: 200 }))
    cleanup.push(() => Promise.all(devices.map((d) => d.endAsync(true))))
    await Promise.all(devices.map((d) => new Promise((resolve) => d.once('connect', resolve))))
    const acknowledged: string[] = []
    let next = 0
    const publishAll = (count: number, among: readonly MqttClient[]): Promise<unknown> => Promise.all(Array.from({ length: count }, () => {
      const id = String(next++)
      return among[next % among.length]!.publishAsync(`jobs/${id}`, id, { qos: 1 }).then(() => acknowledged.push(id), () => undefined)
    }))
    await publishAll(150, devices)
    await active.kill()
    const survivors = devices.filter((_, i) => topology.brokers[i] !== active)
    await publishAll(300, survivors)
    const gap = await failedOver
    await publishAll(150, survivors)
    await active.restart()
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (acknowledged.every((id) => seen.has(id))) resolve()
      }
      waiting = check
      check()
      setTimeout(() => reject(new Error(`${acknowledged.filter((id) => !seen.has(id)).length} acknowledged ids never handled`)), 60_000)
    })
    assert.ok(acknowledged.length >= 400, `${acknowledged.length} acknowledged`)
    assert.notEqual(gap.to, gap.from)
  })
})
