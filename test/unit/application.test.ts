import assert from 'node:assert/strict'
import { Application, InvalidOptionError, Router, silentLogger } from '../../src/index.js'

describe('Application options', () => {
  const router = new Router().on('a', () => {})
  const cases: [string, Record<string, unknown>, string][] = [
    ['no router', { mqtt: { url: 'mqtt://x' } }, 'router'],
    ['no transport at all', { router }, 'mqtt'],
    ['url without a scheme', { router, mqtt: { url: 'broker:1883' } }, 'mqtt.url'],
    ['unsupported scheme', { router, mqtt: { url: 'http://broker' } }, 'mqtt.url'],
    ['a password with an unescaped "/", read as host "u", port 12', { router, mqtt: { url: 'mqtt://u:12/pw@broker:1883' } }, 'mqtt.url'],
    ['persistent session without client id', { router, mqtt: { url: 'mqtt://b', clean: false } }, 'mqtt.clientId'],
    ['protocol version 3', { router, mqtt: { url: 'mqtt://b', protocolVersion: 3 } }, 'mqtt.protocolVersion'],
    ['negative keepalive', { router, mqtt: { url: 'mqtt://b', keepaliveSeconds: -1 } }, 'mqtt.keepaliveSeconds'],
    ['bad ack order', { router, mqtt: { url: 'mqtt://b', ackOrder: 'random' } }, 'mqtt.ackOrder'],
    ['zero maxInFlight', { router, mqtt: { url: 'mqtt://b' }, maxInFlight: 0 }, 'maxInFlight'],
    ['unknown ordering', { router, mqtt: { url: 'mqtt://b' }, ordering: 'fifo' }, 'ordering'],
    ['unknown error policy', { router, mqtt: { url: 'mqtt://b' }, onError: 'retry' }, 'onError'],
    ['empty dead-letter topic', { router, mqtt: { url: 'mqtt://b' }, onError: { deadLetter: '' } }, 'onError'],
    ['module without register', { router, modules: [{ start() {} }] }, 'modules[0]'],
  ]
  for (const [name, options, field] of cases) {
    it(`rejects ${name}, naming "${field}"`, () => {
      assert.throws(
        () => Application.create(options as never),
        (e: unknown) => e instanceof InvalidOptionError && e.field === field && e.message.includes(`"${field}"`),
      )
    })
  }

  it('never echoes a password from the broker URL in an error', () => {
    assert.throws(() => Application.create({ router, mqtt: { url: 'http://user:s3cret@broker' } }), (e: unknown) =>
      e instanceof Error && !e.message.includes('s3cret'))
  })
})

describe('Application.addPublishProperties', () => {
  /** A transport that records what it is asked to publish, for a kernel unit test (no broker involved). */
  function recordingTransport() {
    const published: { topic: string; properties: unknown }[] = []
    const transport = {
      connected: true,
      persistentSession: false,
      connect: async () => {},
      subscribe: async () => {},
      unsubscribe: async () => {},
      publish: async (topic: string, _payload: unknown, options?: { properties?: unknown }) => void published.push({ topic, properties: options?.properties }),
      close: async () => {},
    }
    return { published, transport }
  }

  it("adds what providers return to every publish, in the publisher's context, without overriding the publisher's own", async () => {
    const { published, transport } = recordingTransport()
    const app = Application.create({ router: new Router().on('a', () => {}), transport: transport, logger: silentLogger })
    await app.start()
    let trace: string | undefined = 't-1'
    const remove = app.addPublishProperties(() => (trace === undefined ? undefined : { trace, origin: 'app' }))
    await app.publish('x', 'one')
    await app.publish('y', 'two', { properties: { userProperties: { origin: 'caller' }, contentType: 'text/plain' } })
    trace = undefined
    await app.publish('z', 'three')
    remove()
    trace = 't-2'
    await app.publish('w', 'four')
    await app.stop()
    assert.deepEqual(published, [
      { topic: 'x', properties: { userProperties: { trace: 't-1', origin: 'app' } } },
      { topic: 'y', properties: { contentType: 'text/plain', userProperties: { trace: 't-1', origin: 'caller' } } },
      { topic: 'z', properties: undefined },
      { topic: 'w', properties: undefined },
    ])
  })
})
