import assert from 'node:assert/strict'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import { migrateToLatest, WRITE_POSITION_PROPERTY } from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { ChildApp } from '../support/child-app.js'

interface Answer {
  readonly version: number
  readonly instance: string
  readonly position: string | undefined
}

/** A device that sends a request and waits for the answer on its own topic. */
class Device {
  readonly #client: MqttClient
  readonly #waiting = new Map<string, (answer: Answer) => void>()

  private constructor(client: MqttClient) {
    this.#client = client
    client.on('message', (topic, payload, packet) => {
      const body = JSON.parse(payload.toString()) as { version: number; instance: string }
      const property = packet.properties?.userProperties?.[WRITE_POSITION_PROPERTY]
      const position = Array.isArray(property) ? property[0] : property
      this.#waiting.get(topic)?.({ version: body.version, instance: body.instance, position })
      this.#waiting.delete(topic)
    })
  }

  static async connect(url: string, id: string): Promise<Device> {
    const client = await connectAsync(url, { clientId: `device-${id}`, protocolVersion: 5, reconnectPeriod: 0 })
    await client.subscribeAsync(`devices/${id}/config/+`, { qos: 1 })
    return new Device(client)
  }

  async request(topic: string, answerTopic: string, body: unknown, position?: string): Promise<Answer> {
    const answered = new Promise<Answer>((resolve) => this.#waiting.set(answerTopic, resolve))
    const properties = position === undefined ? {} : { properties: { userProperties: { [WRITE_POSITION_PROPERTY]: position } } }
    await this.#client.publishAsync(topic, JSON.stringify(body), { qos: 1, ...properties })
    return answered
  }

  close(): Promise<void> {
    return this.#client.endAsync()
  }
}

/**
 * Two app processes share the config routes through `$share`, over one
 * Mosquitto and a primary with a replica 1 s behind. Each round a device
 * sets a version, then reads it back twice: Mosquitto hands consecutive
 * messages of a shared subscription to alternate instances, so one of the two
 * reads is handled by the instance that did not write.
 */
describe('Read-your-writes across app instances, through the write position a message carries', function () {
  this.timeout(120_000)
  let topology: Topology
  const apps: ChildApp[] = []

  before(async () => {
    topology = await startTopology({ brokers: 1, replicas: 1, replicaApplyDelayMs: 1000 })
    await migrateToLatest(topology.primary!.url)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE causal_config (device text PRIMARY KEY, version integer NOT NULL)')
    await admin.end()
    for (const name of ['a', 'b']) {
      const app = ChildApp.start('causal-app.js', [topology.brokers[0]!.url, topology.primary!.url, topology.replicas[0]!.url, name])
      apps.push(app)
      await app.next((event) => event.event === 'ready')
    }
  })
  after(async () => {
    await Promise.all(apps.map((app) => app.signal('SIGTERM')))
    await topology?.stop()
  })

  /** Rounds of set-then-two-gets; the gets echo the ack's position unless `strip`. */
  async function rounds(device: Device, id: string, count: number, strip: boolean) {
    const reads: { crossed: boolean; stale: boolean }[] = []
    let acksWithPosition = 0
    for (let version = 1; version <= count; version++) {
      const ack = await device.request(`devices/${id}/config/set`, `devices/${id}/config/ack`, { version })
      if (ack.position !== undefined) acksWithPosition++
      for (let read = 0; read < 2; read++) {
        const value = await device.request(`devices/${id}/config/get`, `devices/${id}/config/value`, {}, strip ? undefined : ack.position)
        reads.push({ crossed: value.instance !== ack.instance, stale: value.version !== version })
      }
    }
    return { acksWithPosition, reads }
  }

  it('reads a write made by the other instance when the message echoes the position the answer carried', async () => {
    const device = await Device.connect(topology.brokers[0]!.url, 'echo')
    try {
      const { acksWithPosition, reads } = await rounds(device, 'echo', 30, false)
      assert.equal(acksWithPosition, 30, 'every answer published after a write carries its position')
      const crossed = reads.filter((r) => r.crossed)
      assert.ok(crossed.length >= 10, `${crossed.length} of ${reads.length} reads were handled by the instance that did not write`)
      assert.equal(reads.filter((r) => r.stale).length, 0, 'no read is stale, on either instance')
    } finally {
      await device.close()
    }
  })

  it('reads stale on the other instance with the property stripped, where the per-process scope cannot help', async () => {
    const device = await Device.connect(topology.brokers[0]!.url, 'strip')
    try {
      const { reads } = await rounds(device, 'strip', 30, true)
      const crossed = reads.filter((r) => r.crossed)
      const same = reads.filter((r) => !r.crossed)
      assert.ok(crossed.length >= 10, `${crossed.length} crossed reads`)
      assert.ok(crossed.filter((r) => r.stale).length > 0, 'a read on the other instance, without the position, sees the 1 s old replica')
      assert.equal(same.filter((r) => r.stale).length, 0, "the writing instance's own consistency key keeps its reads fresh")
    } finally {
      await device.close()
    }
  })
})
