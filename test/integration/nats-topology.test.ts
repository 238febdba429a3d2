import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, connectAsync, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt'
import { MissingBinaryError, startTopology, TopologyError, type BrokerHandle, type Topology } from '../../src/testing/index.js'

// nats-server 2.9 speaks MQTT 3.1.1 only.
const CLIENT_OPTIONS: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 }
const DELIVERY_TIMEOUT_MS = 10_000

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

// Resolves with the first `count` payloads `client` receives, or fails
// saying how many had come when DELIVERY_TIMEOUT_MS ran out.
function collect(client: MqttClient, count: number): Promise<string[]> {
  const received: string[] = []
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${received.length} of ${count} messages arrived within ${DELIVERY_TIMEOUT_MS} ms: ${received.join(', ')}`)),
      DELIVERY_TIMEOUT_MS,
    )
    client.on('message', (_topic, payload) => {
      if (received.push(payload.toString()) === count) {
        clearTimeout(timer)
        resolve(received)
      }
    })
  })
}

describe('local topology with a NATS cluster', function () {
  this.timeout(60_000)
  let topology: Topology
  const clients: MqttClient[] = []

  async function connectTo(broker: BrokerHandle, options: IClientOptions = {}): Promise<MqttClient> {
    const client = await connectAsync(broker.url, { ...CLIENT_OPTIONS, ...options })
    clients.push(client)
    return client
  }

  before(async () => {
    topology = await startTopology({ brokers: 3, brokerKind: 'nats' })
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)))
  })

  after(() => topology?.stop())

  it('starts three nodes whose MQTT listeners are the brokers', () => {
    assert.deepEqual(
      topology.brokers.map((broker) => broker.name),
      ['nats-1', 'nats-2', 'nats-3'],
    )
    for (const broker of topology.brokers) {
      assert.equal(broker.url, `mqtt://127.0.0.1:${broker.port}`)
      assert.equal(broker.wsUrl, undefined)
      assert.equal(broker.running, true)
      assert.equal(broker.logFile, join(broker.directory, 'nats-server.log'))
    }
  })

  it('delivers a QoS 1 message published on nats-1 to a QoS 1 subscriber on nats-3', async () => {
    const [first, , third] = topology.brokers as [BrokerHandle, BrokerHandle, BrokerHandle]
    const subscriber = await connectTo(third)
    const received = collect(subscriber, 1)
    await subscriber.subscribeAsync('nats/cluster', { qos: 1 })
    const publisher = await connectTo(first)
    await publisher.publishAsync('nats/cluster', 'from nats-1', { qos: 1 })
    assert.deepEqual(await received, ['from nats-1'])
  })

  it('resumes a persistent session on another node with the messages queued meanwhile', async () => {
    const [first, second, third] = topology.brokers as [BrokerHandle, BrokerHandle, BrokerHandle]
    const session: IClientOptions = { ...CLIENT_OPTIONS, clean: false, clientId: 'app-1' }
    const offline = await connectTo(first, session)
    await offline.subscribeAsync('nats/session', { qos: 1 })
    await offline.endAsync()

    const publisher = await connectTo(second)
    const sent = Array.from({ length: 20 }, (_, index) => `queued ${index + 1}`)
    for (const payload of sent) {
      await publisher.publishAsync('nats/session', payload, { qos: 1 })
    }

    const resumed = connect(third.url, session)
    clients.push(resumed)
    const received = collect(resumed, sent.length)
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      resumed.once('connect', resolve)
      resumed.once('error', reject)
    })
    assert.equal(connack.sessionPresent, true)
    assert.deepEqual(await received, sent)
  })

  it('refuses an MQTT 5 CONNECT, as nats-server 2.9 speaks MQTT 3.1.1 only', async () => {
    await assert.rejects(
      connectAsync(topology.brokers[0]!.url, { ...CLIENT_OPTIONS, protocolVersion: 5 }),
      (error: Error & { code?: number }) => error.code === 1 && /Unacceptable protocol version/.test(error.message),
    )
  })

  it('accepts MQTT again once restart() of a SIGKILLed node resolves', async () => {
    const [first, second] = topology.brokers as [BrokerHandle, BrokerHandle]
    const killedPid = second.pid!
    await second.kill()
    assert.equal(second.running, false)
    assert.ok(isGone(killedPid))

    await second.restart()
    assert.equal(second.running, true)
    assert.notEqual(second.pid, killedPid)
    const subscriber = await connectTo(second)
    const received = collect(subscriber, 1)
    await subscriber.subscribeAsync('nats/restarted', { qos: 1 })
    const publisher = await connectTo(first)
    await publisher.publishAsync('nats/restarted', 'after the crash', { qos: 1 })
    assert.deepEqual(await received, ['after the crash'])
  })
})

describe('local topology NATS options', () => {
  let emptyDirectory: string

  before(async () => {
    emptyDirectory = await mkdtemp(join(tmpdir(), 'rmq-empty-'))
  })

  after(() => rm(emptyDirectory, { recursive: true, force: true }))

  it('reports a missing nats-server with a MissingBinaryError naming the Debian package', async () => {
    await assert.rejects(
      startTopology({ brokers: 3, brokerKind: 'nats', binaries: { searchPath: [emptyDirectory] } }),
      (error: unknown) =>
        error instanceof MissingBinaryError && error.binary === 'nats-server' && /apt-get install nats-server/.test(error.message),
    )
  })

  it('refuses options that only Mosquitto brokers have', async () => {
    await assert.rejects(
      startTopology({ brokerKind: 'nats', websockets: true }),
      (error: unknown) => error instanceof TopologyError && /websockets/.test(error.message),
    )
    await assert.rejects(
      startTopology({ brokerKind: 'nats', brokerPersistence: true }),
      (error: unknown) => error instanceof TopologyError && /JetStream/.test(error.message),
    )
  })

  it('starts a single node without a cluster', async () => {
    const topology = await startTopology({ brokers: 1, brokerKind: 'nats' })
    try {
      const client = await connectAsync(topology.brokers[0]!.url, CLIENT_OPTIONS)
      await client.endAsync()
    } finally {
      await topology.stop()
    }
  })
})
