import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect as connectTcp } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt'
import { freePort, startTopology, type BrokerHandle, type Topology } from '../../src/testing/index.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'
import { createTlsMaterial, mosquittoTlsListener, type TlsMaterial } from '../support/tls-certificates.js'

const CLIENT_OPTIONS: IClientOptions = { reconnectPeriod: 0, connectTimeout: 5_000 }
const CERTIFICATE_ERRORS = new Set(['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN'])

// Every client a test opens goes into `clients`, for afterEach to end.
async function connectTracked(clients: MqttClient[], url: string, options: IClientOptions): Promise<MqttClient> {
  const client = await connectAsync(url, { ...CLIENT_OPTIONS, ...options }, false)
  clients.push(client)
  // A reset connection surfaces as an 'error' event, which would otherwise be thrown.
  client.on('error', () => {})
  return client
}

async function roundTrip(client: MqttClient, topic: string, payloads: readonly string[] = ['ping']): Promise<string[]> {
  const received: string[] = []
  const all = new Promise<string[]>((resolve) => {
    client.on('message', (messageTopic, payload) => {
      if (messageTopic === topic && received.push(payload.toString()) === payloads.length) {
        resolve(received)
      }
    })
  })
  await client.subscribeAsync(topic, { qos: 1 })
  await Promise.all(payloads.map((payload) => client.publishAsync(topic, payload, { qos: 1 })))
  return all
}

function nextEvent<T>(client: MqttClient, event: 'close' | 'error'): Promise<T> {
  return new Promise((resolve) => client.once(event, (value?: unknown) => resolve(value as T)))
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

describe('TcpFaultProxy against a real broker', function () {
  this.timeout(30_000)
  let topology: Topology
  let broker: BrokerHandle
  const proxies: TcpFaultProxy[] = []
  const clients: MqttClient[] = []

  async function startProxy(port?: number): Promise<TcpFaultProxy> {
    const proxy = await TcpFaultProxy.start({ target: { host: broker.host, port: broker.port }, ...(port === undefined ? {} : { port }) })
    proxies.push(proxy)
    return proxy
  }

  const connect = (url: string, options: IClientOptions = {}): Promise<MqttClient> => connectTracked(clients, url, options)

  before(async () => {
    topology = await startTopology({ brokers: 1 })
    broker = topology.brokers[0]!
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  after(() => topology?.stop())

  it('passes MQTT traffic both ways on the port it was given', async () => {
    const port = await freePort()
    const proxy = await startProxy(port)
    assert.equal(proxy.port, port)
    assert.equal(proxy.url(), `mqtt://127.0.0.1:${port}`)
    assert.equal(proxy.mode, 'pass')

    const client = await connect(proxy.url())
    assert.equal(proxy.connections, 1)
    assert.deepEqual(await roundTrip(client, 'fault-tooling/pass', ['a', 'b']), ['a', 'b'])
  })

  it('blackholes new connections, and passes again once switched back', async () => {
    const proxy = await startProxy()
    await connect(proxy.url())
    proxy.setMode('blackhole')

    const attempt = connectAsync(proxy.url(), { reconnectPeriod: 0, connectTimeout: 500 }, false)
    await proxy.waitForConnections(2)
    assert.equal(proxy.connections, 2)
    await assert.rejects(attempt, /connack timeout|Couldn't connect to server/)

    proxy.setMode('pass')
    const client = await connect(proxy.url())
    assert.deepEqual(await roundTrip(client, 'fault-tooling/blackhole'), ['ping'])
  })

  it('keeps a blackholed connection open but dead after switching back to pass', async () => {
    const proxy = await startProxy()
    const witness = await connect(broker.url)
    await witness.subscribeAsync('fault-tooling/dead', { qos: 1 })
    const seen: string[] = []
    const aliveSeen = new Promise<void>((resolve) =>
      witness.on('message', (_topic, payload) => seen.push(payload.toString()) && payload.toString() === 'alive' && resolve()),
    )

    const client = await connect(proxy.url(), { keepalive: 0 })
    proxy.setMode('blackhole')
    const puback = client.publishAsync('fault-tooling/dead', 'lost', { qos: 1 })
    proxy.setMode('pass')
    // Had the proxy kept the blackholed publish, it would have gone out on the
    // switch, before this one.
    const next = await connect(proxy.url())
    await next.publishAsync('fault-tooling/dead', 'alive', { qos: 1 })
    await aliveSeen
    assert.deepEqual(seen, ['alive'])
    assert.equal(client.connected, true)
    assert.equal(proxy.connections, 2)
    client.end(true)
    await assert.rejects(puback, /Connection closed/)
  })

  it('delays every chunk in both directions, in order', async () => {
    const proxy = await startProxy()
    proxy.setLatency(100)
    assert.equal(proxy.mode, 'latency')

    const started = performance.now()
    const client = await connect(proxy.url())
    await client.publishAsync('fault-tooling/latency', 'slow', { qos: 1 })
    const elapsed = performance.now() - started
    // CONNECT, CONNACK, PUBLISH and PUBACK each cross the proxy once.
    assert.ok(elapsed >= 395, `connect and a QoS 1 publish took ${elapsed.toFixed(0)} ms through 100 ms of latency per direction`)

    const payloads = Array.from({ length: 50 }, (_, i) => `m${i}`)
    assert.deepEqual(await roundTrip(client, 'fault-tooling/latency-order', payloads), payloads)
  })

  it('refuses: closes existing connections and resets new ones, on the same port', async () => {
    const proxy = await startProxy()
    const client = await connect(proxy.url())
    const closed = nextEvent(client, 'close')
    proxy.setMode('refuse')
    await closed
    assert.equal(proxy.connections, 0)
    // The reset may hit the client before or after its socket reports 'connect'.
    await assert.rejects(connectAsync(proxy.url(), CLIENT_OPTIONS, false), /ECONNRESET|EPIPE|Couldn't connect to server/)
    assert.equal(await connectionRefused(proxy.port), false)
  })

  it('cut() drops current connections but keeps the mode', async () => {
    const proxy = await startProxy()
    const client = await connect(proxy.url())
    const reset = nextEvent<NodeJS.ErrnoException>(client, 'error')
    const closed = nextEvent(client, 'close')
    proxy.cut()
    assert.equal((await reset).code, 'ECONNRESET')
    await closed
    assert.equal(proxy.mode, 'pass')
    assert.equal(proxy.connections, 0)

    const next = await connect(proxy.url())
    assert.deepEqual(await roundTrip(next, 'fault-tooling/cut'), ['ping'])
  })

  it('close() releases the port, is idempotent, and rejects further use', async () => {
    const proxy = await startProxy()
    await connect(proxy.url())
    await proxy.close()
    await proxy.close()
    assert.equal(proxy.connections, 0)
    assert.equal(await connectionRefused(proxy.port), true)
    assert.throws(() => proxy.setMode('blackhole'), /closed; start a new one/)
  })

  it('rejects options it cannot use, saying what to pass', async () => {
    await assert.rejects(TcpFaultProxy.start({ target: { host: '127.0.0.1', port: 0 } }), /needs a target like/)
    const proxy = await startProxy()
    assert.throws(() => proxy.setMode('latency'), /setLatency\(20\)/)
    assert.throws(() => proxy.setLatency(-1), /finite number >= 0/)
    await assert.rejects(startProxy(proxy.port), /is in use/)
  })
})

describe('TLS material for a Mosquitto listener', function () {
  this.timeout(30_000)
  let directory: string
  let material: TlsMaterial
  let tlsPort: number
  let topology: Topology | undefined
  const proxies: TcpFaultProxy[] = []
  const clients: MqttClient[] = []

  const connect = (url: string, options: IClientOptions): Promise<MqttClient> => connectTracked(clients, url, options)

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), 'routemq-tls-'))
    material = await createTlsMaterial(directory)
    tlsPort = await freePort()
    topology = await startTopology({ brokers: 1, brokerConfig: mosquittoTlsListener(tlsPort, material) })
  })

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)))
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()))
  })

  after(async () => {
    await topology?.stop()
    await rm(directory, { recursive: true, force: true })
  })

  it('creates PEM files for a CA, a server certificate and an unrelated CA', () => {
    assert.match(material.caPem, /^-----BEGIN CERTIFICATE-----/)
    assert.match(material.certPem, /^-----BEGIN CERTIFICATE-----/)
    assert.match(material.keyPem, /-----BEGIN (EC )?PRIVATE KEY-----/)
    assert.notEqual(material.otherCaPem, material.caPem)
    assert.match(mosquittoTlsListener(tlsPort, material), new RegExp(`^listener ${tlsPort} 127\\.0\\.0\\.1\\n`))
  })

  it('lets a client that trusts the CA round-trip a message over mqtts', async () => {
    const client = await connect(`mqtts://127.0.0.1:${tlsPort}`, { ca: material.caPem })
    assert.deepEqual(await roundTrip(client, 'fault-tooling/tls'), ['ping'])
  })

  it('fails certificate verification for a client that trusts another CA', async () => {
    const error = await connectAsync(`mqtts://127.0.0.1:${tlsPort}`, { ...CLIENT_OPTIONS, ca: material.otherCaPem }, false).then(
      (client) => {
        clients.push(client)
        assert.fail('a client trusting an unrelated CA connected')
      },
      (reason: NodeJS.ErrnoException) => reason,
    )
    assert.ok(CERTIFICATE_ERRORS.has(error.code ?? ''), `expected a certificate verification error, got ${error.code}: ${error.message}`)
    assert.match(error.message, /unable to (get local issuer|verify)|self[- ]signed/)
  })

  it('connects without verification when rejectUnauthorized is false', async () => {
    const client = await connect(`mqtts://127.0.0.1:${tlsPort}`, { ca: material.otherCaPem, rejectUnauthorized: false })
    assert.deepEqual(await roundTrip(client, 'fault-tooling/tls-unverified'), ['ping'])
  })

  it('carries TLS through a TcpFaultProxy, whose address the certificate also names', async () => {
    const proxy = await TcpFaultProxy.start({ target: { host: '127.0.0.1', port: tlsPort } })
    proxies.push(proxy)
    const client = await connect(proxy.url('mqtts'), { ca: material.caPem })
    assert.deepEqual(await roundTrip(client, 'fault-tooling/tls-proxy'), ['ping'])
  })

  it('names the Debian package when openssl is missing', async () => {
    await assert.rejects(
      createTlsMaterial(join(directory, 'missing-openssl'), { openssl: join(directory, 'no-such-openssl') }),
      /apt-get install openssl/,
    )
  })
})
