import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import { HealthMonitor, HealthServer, silentLogger, type HealthServerOptions, type LogFields, type Logger } from '../../src/index.js'

/** A client that sends the start of a request and never the blank line that ends its header. */
interface StalledClient {
  readonly socket: Socket
  /** Resolves when the socket is closed, with the milliseconds since it connected. */
  readonly closed: Promise<number>
  readonly isClosed: () => boolean
}

function stall(port: number, firstBytes = 'GET /health HTTP/1.1\r\nHost: probe\r\n'): Promise<StalledClient> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let closedAt: number | undefined
    socket.on('error', () => undefined)
    // Reading (and dropping) what the server sends is how a client notices the server closed the connection.
    socket.resume()
    socket.once('connect', () => {
      const connectedAt = performance.now()
      const closed = new Promise<number>((done) => socket.once('close', () => done((closedAt = performance.now()) - connectedAt)))
      socket.write(firstBytes)
      resolve({ socket, closed, isClosed: () => closedAt !== undefined })
    })
    socket.once('error', reject)
  })
}

/** Rejects once `ms` have passed: a bound on waiting for an event, so that a server that never closes fails the test rather than hanging it. */
function within<T>(ms: number, what: string, event: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)))
  return Promise.race([event, bound]).finally(() => clearTimeout(timer))
}

describe('HealthServer against clients that connect and stall (slowloris)', function () {
  this.timeout(20_000)
  const cleanup: (() => unknown)[] = []

  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!()
  })

  async function started(options: Partial<HealthServerOptions>): Promise<HealthServer> {
    const server = new HealthServer({ monitor: new HealthMonitor({ logger: silentLogger }), port: 0, ...options })
    await server.start()
    cleanup.push(() => server.close())
    return server
  }

  async function stalledClients(port: number, count: number): Promise<StalledClient[]> {
    const clients: StalledClient[] = []
    // One after another, so that the server accepts them in this order.
    for (let i = 0; i < count; i++) clients.push(await stall(port))
    cleanup.push(() => clients.forEach((client) => client.socket.destroy()))
    return clients
  }

  it('answers /health at once while three times maxConnections clients stall, and closes the stalled ones after headersTimeoutMs', async () => {
    const server = await started({ maxConnections: 8, headersTimeoutMs: 1000, requestTimeoutMs: 1000 })
    const clients = await stalledClients(server.port!, 24)

    const asked = performance.now()
    const response = await fetch(`${server.url}/health`)
    const tookMs = performance.now() - asked
    assert.equal(response.status, 200)
    assert.equal(((await response.json()) as { status: string }).status, 'pass')
    assert.ok(tookMs < 500, `/health took ${Math.round(tookMs)} ms, as if it had waited for a stalled client's timeout`)

    const lived = await within(4000, 'the server closing every stalled client', Promise.all(clients.map((client) => client.closed)))
    assert.ok(Math.max(...lived) < 3000, `a stalled client lived ${Math.round(Math.max(...lived))} ms with headersTimeoutMs 1000`)
  })

  it('keeps a connection free at the cap by closing the client that has waited longest without a request', async () => {
    // Timeouts far beyond the test: every close seen here is the cap's doing.
    const server = await started({ maxConnections: 4, headersTimeoutMs: 15_000, requestTimeoutMs: 15_000, idleTimeoutMs: 15_000 })
    const clients = await stalledClients(server.port!, 10)

    const asked = performance.now()
    const response = await fetch(`${server.url}/health`)
    assert.equal(response.status, 200)
    await response.arrayBuffer()
    assert.ok(performance.now() - asked < 1000, '/health did not wait for a slot')

    // Each arrival that took the last of the 4 slots closed the oldest stalled client: /health's connection
    // and 2 stalled ones hold 3, and one stays free for the next probe.
    const oldest = clients.slice(0, 8)
    await within(4000, 'the server closing the oldest stalled clients', Promise.all(oldest.map((client) => client.closed)))
    assert.deepEqual(clients.map((client) => client.isClosed()), [...oldest.map(() => true), false, false])
    const again = await fetch(`${server.url}/ready`)
    assert.equal(again.status, 200, 'the next probe is answered too')
    await again.arrayBuffer()
  })

  it('cuts a client that sends its header a byte at a time after headersTimeoutMs, though the socket is never idle', async () => {
    const server = await started({ headersTimeoutMs: 800, requestTimeoutMs: 800, idleTimeoutMs: 15_000 })
    const [client] = await stalledClients(server.port!, 1)
    const trickle = setInterval(() => client!.socket.write('a'), 50)
    cleanup.push(() => clearInterval(trickle))
    client!.socket.write('X-Padding: ')

    const lived = await within(4000, 'the server closing the trickling client', client!.closed)
    assert.ok(lived >= 700, `closed after ${Math.round(lived)} ms, before headersTimeoutMs`)
  })
})

describe('HealthServer once it listens', function () {
  this.timeout(20_000)

  /** The node:http server under a started `HealthServer`, caught on the channel node:http announces each request on. */
  async function nodeServerOf(server: HealthServer): Promise<Server> {
    let caught: Server | undefined
    const onRequest = (message: unknown): void => {
      caught ??= (message as { server: Server }).server
    }
    subscribe('http.server.request.start', onRequest)
    try {
      await (await fetch(`${server.url}/health`)).arrayBuffer()
    } finally {
      unsubscribe('http.server.request.start', onRequest)
    }
    assert.ok(caught, 'node:http announced the request')
    return caught
  }

  it('logs an error of its listening socket, without secrets, and keeps answering instead of crashing the process', async () => {
    const errors: { message: string; fields?: LogFields }[] = []
    const logger: Logger = { ...silentLogger, error: (message, fields) => errors.push({ message, fields }) }
    const server = new HealthServer({ monitor: new HealthMonitor(), port: 0, logger })
    await server.start()
    try {
      const nodeServer = await nodeServerOf(server)
      // What accept() reports when the process is out of file descriptors; node:http emits it on the server, and with no
      // listener the emit throws from the event loop: an uncaught exception that ends the process.
      const failure = Object.assign(new Error('accept EMFILE while postgres://app:s3cret@db-1:5432/app was open'), { code: 'EMFILE', syscall: 'accept' })
      assert.doesNotThrow(() => nodeServer.emit('error', failure))

      assert.equal(errors.length, 1, 'logged once')
      assert.match(errors[0]!.message, /health/)
      assert.equal(errors[0]!.fields?.['code'], 'EMFILE')
      assert.ok(!JSON.stringify(errors).includes('s3cret'), `no secret in ${JSON.stringify(errors)}`)
      const response = await fetch(`${server.url}/health`)
      assert.equal(response.status, 200, 'still answering')
      await response.arrayBuffer()
    } finally {
      await server.close()
    }
  })

  it('reports a taken port through start() alone, not also through the log', async () => {
    const errors: string[] = []
    const logger: Logger = { ...silentLogger, error: (message) => errors.push(message) }
    const first = new HealthServer({ monitor: new HealthMonitor(), port: 0 })
    await first.start()
    try {
      const second = new HealthServer({ monitor: new HealthMonitor(), port: first.port!, logger })
      await assert.rejects(second.start(), /health\.port/)
      assert.deepEqual(errors, [])
    } finally {
      await first.close()
    }
  })
})
