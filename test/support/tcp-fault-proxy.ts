import { connect, createServer, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'

const HOST = '127.0.0.1'
const DEFAULT_WAIT_MS = 10_000
const WAIT_HINT = 'check that the client connects to the proxy\'s url() and that the mode lets connections stay open (not \'refuse\').'

interface Waiter {
  readonly check: () => void
  readonly abort: () => void
}

/**
 * How a {@link TcpFaultProxy} treats traffic:
 * - `pass`: forwards both ways;
 * - `blackhole`: accepts and keeps connections open, but reads and discards
 *   everything in both directions; a connection once blackholed stays dead;
 * - `latency`: forwards every chunk after a fixed delay per direction, in order;
 * - `refuse`: resets existing connections and every new one at once.
 *
 * @example
 * const mode: TcpFaultMode = 'blackhole'
 * proxy.setMode(mode)
 */
export type TcpFaultMode = 'pass' | 'blackhole' | 'latency' | 'refuse'

/**
 * Where a {@link TcpFaultProxy} forwards to and, optionally, which loopback
 * port it listens on (default: a free one).
 *
 * @example
 * const options: TcpFaultProxyOptions = { target: { host: broker.host, port: broker.port } }
 */
export interface TcpFaultProxyOptions {
  readonly target: { readonly host: string; readonly port: number }
  readonly port?: number
}

/**
 * A TCP proxy on 127.0.0.1 for fault injection: it forwards to one target and
 * its behaviour ({@link TcpFaultMode}) can be switched at any time, affecting
 * existing and new connections. Always `close()` it; it holds no handles
 * afterwards.
 *
 * @example
 * const proxy = await TcpFaultProxy.start({ target: { host: broker.host, port: broker.port } })
 * const client = await mqtt.connectAsync(proxy.url())
 * proxy.setMode('blackhole')
 * await proxy.close()
 */
export class TcpFaultProxy {
  /**
   * The loopback port the proxy listens on.
   *
   * @example
   * const client = await mqtt.connectAsync({ host: '127.0.0.1', port: proxy.port })
   */
  readonly port: number
  /**
   * Where connections are forwarded to.
   *
   * @example
   * console.log(`${proxy.port} -> ${proxy.target.host}:${proxy.target.port}`)
   */
  readonly target: { readonly host: string; readonly port: number }
  readonly #server: Server
  readonly #links = new Set<Link>()
  readonly #waiters = new Set<Waiter>()
  #mode: TcpFaultMode = 'pass'
  #latencyMs = 0
  #closed: Promise<void> | undefined

  /**
   * Starts listening; resolves once the port is bound.
   *
   * @example
   * const proxy = await TcpFaultProxy.start({ target: { host: '127.0.0.1', port: 1883 }, port: 41999 })
   */
  static async start(options: TcpFaultProxyOptions): Promise<TcpFaultProxy> {
    const { target } = options
    if (typeof target?.host !== 'string' || target.host === '' || !isPort(target.port) || target.port === 0) {
      throw new Error(
        `TcpFaultProxy needs a target like { host: '127.0.0.1', port: 1883 }, got ${JSON.stringify(target)}; ` +
          'pass the host and port of the server to forward to, e.g. a broker handle\'s host and port.',
      )
    }
    if (options.port !== undefined && !isPort(options.port)) {
      throw new Error(`TcpFaultProxy port must be an integer from 0 to 65535, got ${String(options.port)}; omit it to get a free port.`)
    }
    const server = createServer({ allowHalfOpen: true, noDelay: true })
    const port = await listen(server, options.port ?? 0)
    return new TcpFaultProxy(server, port, { host: target.host, port: target.port })
  }

  private constructor(server: Server, port: number, target: { readonly host: string; readonly port: number }) {
    this.#server = server
    this.port = port
    this.target = Object.freeze(target)
    server.on('connection', (socket) => this.#accept(socket))
    // Once listening, an error is a failed accept (e.g. EMFILE) of a
    // connection the peer will see fail; the proxy itself keeps running.
    server.on('error', () => {})
  }

  /**
   * The current mode.
   *
   * @example
   * assert.equal(proxy.mode, 'pass')
   */
  get mode(): TcpFaultMode {
    return this.#mode
  }

  /**
   * The delay per direction used in `latency` mode, in ms.
   *
   * @example
   * proxy.setLatency(20)
   * assert.equal(proxy.latencyMs, 20)
   */
  get latencyMs(): number {
    return this.#latencyMs
  }

  /**
   * Connections currently open on the listening side, blackholed ones included.
   *
   * @example
   * proxy.cut()
   * assert.equal(proxy.connections, 0)
   */
  get connections(): number {
    return this.#links.size
  }

  /**
   * `<scheme>://127.0.0.1:<port>`, the address clients should use instead of the target's.
   *
   * @example
   * await mqtt.connectAsync(proxy.url())        // mqtt://127.0.0.1:<port>
   * await mqtt.connectAsync(proxy.url('mqtts'), { ca })
   */
  url(scheme = 'mqtt'): string {
    return `${scheme}://${HOST}:${this.port}`
  }

  /**
   * Switches the behaviour for existing and new connections. `latency` needs
   * the delay, which {@link setLatency} takes as well.
   *
   * @example
   * proxy.setMode('blackhole')
   * proxy.setMode('latency', 20)
   * proxy.setMode('pass')
   */
  setMode(mode: TcpFaultMode, latencyMs?: number): void {
    this.#assertOpen(`setMode('${mode}')`)
    if (mode === 'latency') {
      if (latencyMs === undefined || !Number.isFinite(latencyMs) || latencyMs < 0) {
        throw new Error(`setMode('latency') needs a delay in ms (a finite number >= 0), got ${String(latencyMs)}; call setMode('latency', 20) or setLatency(20).`)
      }
      this.#latencyMs = latencyMs
    } else if (!['pass', 'blackhole', 'refuse'].includes(mode)) {
      throw new Error(`Unknown TcpFaultProxy mode ${JSON.stringify(mode)}; use 'pass', 'blackhole', 'latency' or 'refuse'.`)
    }
    this.#mode = mode
    if (mode === 'blackhole') {
      for (const link of this.#links) {
        link.blackhole()
      }
    } else if (mode === 'refuse') {
      this.cut()
    }
  }

  /**
   * Delays every chunk by `ms` in each direction from now on (switches to
   * `latency` mode); a request/response round trip then takes `2 * ms` more.
   *
   * @example
   * proxy.setLatency(20)
   */
  setLatency(ms: number): void {
    this.setMode('latency', ms)
  }

  /**
   * Resets every current connection (an RST to both peers) without changing
   * the mode, so new connections behave as before.
   *
   * @example
   * proxy.cut()
   */
  cut(): void {
    for (const link of [...this.#links]) {
      link.destroy(true)
    }
  }

  /**
   * Resolves once at least `count` connections are open, e.g. to know that a
   * client's connection attempt has reached the proxy.
   *
   * @example
   * const attempt = mqtt.connectAsync(proxy.url(), { connectTimeout: 500, reconnectPeriod: 0 }, false)
   * await proxy.waitForConnections(1)
   */
  waitForConnections(count: number, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    this.#assertOpen(`waitForConnections(${count})`)
    if (this.#links.size >= count) {
      return Promise.resolve()
    }
    return new Promise((resolve, reject) => {
      const fail = (reason: string): void => {
        this.#waiters.delete(waiter)
        clearTimeout(timer)
        reject(new Error(`TcpFaultProxy on port ${this.port} ${reason} ${this.#links.size} of ${count} connections were open; ${WAIT_HINT}`))
      }
      const waiter: Waiter = {
        check: () => {
          if (this.#links.size >= count) {
            this.#waiters.delete(waiter)
            clearTimeout(timer)
            resolve()
          }
        },
        abort: () => fail('was closed while'),
      }
      const timer = setTimeout(() => fail(`waited ${timeoutMs} ms, but only`), timeoutMs)
      this.#waiters.add(waiter)
    })
  }

  /**
   * Stops listening and destroys every connection; resolves once the port is
   * released. Calling it again returns the same promise.
   *
   * @example
   * after(() => proxy.close())
   */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve())
      for (const link of [...this.#links]) {
        link.destroy(false)
      }
      for (const waiter of [...this.#waiters]) {
        waiter.abort()
      }
    })
    return this.#closed
  }

  #accept(socket: Socket): void {
    if (this.#closed !== undefined || this.#mode === 'refuse') {
      socket.on('error', () => {})
      socket.resetAndDestroy()
      return
    }
    const link = new Link(socket, this.#mode === 'blackhole' ? undefined : this.target, () => this.#delay(), () => this.#links.delete(link))
    this.#links.add(link)
    for (const waiter of [...this.#waiters]) {
      waiter.check()
    }
  }

  #delay(): number {
    return this.#mode === 'latency' ? this.#latencyMs : 0
  }

  #assertOpen(action: string): void {
    if (this.#closed !== undefined) {
      throw new Error(`Cannot ${action}: the TcpFaultProxy on port ${this.port} is closed; start a new one with TcpFaultProxy.start().`)
    }
  }
}

// One accepted connection and, unless it was accepted in blackhole mode, its
// connection to the target.
class Link {
  readonly #client: Socket
  readonly #upstream: Socket | undefined
  readonly #directions: readonly Direction[]
  readonly #onGone: () => void
  #dead = false
  #gone = false

  constructor(client: Socket, target: { readonly host: string; readonly port: number } | undefined, delay: () => number, onGone: () => void) {
    this.#client = client
    this.#onGone = onGone
    client.on('error', () => this.destroy(true))
    // A clean close comes after both ways have ended; data still queued for
    // the other side is delivered before that one closes too.
    client.on('close', () => {
      if (this.#dead || this.#upstream === undefined || this.#upstream.destroyed) {
        this.destroy(false)
      }
    })
    if (target === undefined) {
      this.#upstream = undefined
      this.#directions = []
      this.#dead = true
      this.#discardFrom(client)
      return
    }
    const upstream = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true })
    this.#upstream = upstream
    upstream.on('error', () => {
      if (!this.#dead) {
        this.destroy(true)
      }
    })
    upstream.on('close', () => {
      if (!this.#dead && client.destroyed) {
        this.destroy(false)
      }
    })
    this.#directions = [new Direction(client, upstream, delay), new Direction(upstream, client, delay)]
  }

  blackhole(): void {
    if (this.#dead || this.#gone) {
      return
    }
    this.#dead = true
    for (const direction of this.#directions) {
      direction.stop()
    }
    this.#discardFrom(this.#client)
    if (this.#upstream !== undefined) {
      this.#discardFrom(this.#upstream)
    }
  }

  destroy(reset: boolean): void {
    if (this.#gone) {
      return
    }
    this.#gone = true
    this.#onGone()
    for (const direction of this.#directions) {
      direction.stop()
    }
    for (const socket of [this.#client, this.#upstream]) {
      if (socket !== undefined) {
        dispose(socket, reset)
      }
    }
  }

  #discardFrom(socket: Socket): void {
    // The directions' data listeners drop everything once stopped; reading on
    // keeps the peer's writes from blocking.
    socket.resume()
    if (socket === this.#client) {
      // A client that gives up closes its side; nobody would ever answer it.
      socket.on('end', () => this.destroy(false))
    } else {
      // A target that gives up must not be seen by the client, but its socket
      // need not linger half-closed.
      socket.on('end', () => socket.destroy())
    }
  }
}

// One direction of a link: chunks leave in arrival order, each no earlier
// than its arrival plus the delay current at the time.
class Direction {
  readonly #from: Socket
  readonly #to: Socket
  readonly #delay: () => number
  readonly #queue: { readonly due: number; readonly chunk: Buffer }[] = []
  #timer: NodeJS.Timeout | undefined
  #ended = false
  #stopped = false
  #draining = false

  constructor(from: Socket, to: Socket, delay: () => number) {
    this.#from = from
    this.#to = to
    this.#delay = delay
    from.on('data', (chunk: Buffer) => this.#push(chunk))
    from.on('end', () => {
      this.#ended = true
      if (this.#queue.length === 0) {
        this.#endTarget()
      }
    })
  }

  stop(): void {
    this.#stopped = true
    this.#queue.length = 0
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #push(chunk: Buffer): void {
    if (this.#stopped) {
      return
    }
    const delay = this.#delay()
    if (delay <= 0 && this.#queue.length === 0) {
      this.#write(chunk)
      return
    }
    const previous = this.#queue.at(-1)?.due ?? 0
    this.#queue.push({ due: Math.max(performance.now() + delay, previous), chunk })
    this.#schedule()
  }

  #flush(): void {
    this.#timer = undefined
    if (this.#stopped) {
      return
    }
    const now = performance.now()
    while (this.#queue.length > 0 && this.#queue[0]!.due <= now) {
      this.#write(this.#queue.shift()!.chunk)
    }
    if (this.#queue.length > 0) {
      this.#schedule()
    } else if (this.#ended) {
      this.#endTarget()
    }
  }

  #endTarget(): void {
    if (!this.#stopped && !this.#to.destroyed) {
      this.#to.end()
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#queue.length === 0) {
      return
    }
    // Timers may fire up to a millisecond early; #flush re-arms until due.
    this.#timer = setTimeout(() => this.#flush(), Math.max(0, Math.ceil(this.#queue[0]!.due - performance.now())))
  }

  #write(chunk: Buffer): void {
    if (this.#to.destroyed || this.#to.writableEnded) {
      return
    }
    if (!this.#to.write(chunk) && !this.#draining) {
      this.#draining = true
      this.#from.pause()
      this.#to.once('drain', () => {
        this.#draining = false
        this.#from.resume()
      })
    }
  }
}

function dispose(socket: Socket, reset: boolean): void {
  if (socket.destroyed) {
    return
  }
  // resetAndDestroy() of a socket still connecting would wait for the connection.
  if (reset && !socket.connecting) {
    socket.resetAndDestroy()
  } else {
    socket.destroy()
  }
}

function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 65_535
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const hint =
        error.code === 'EADDRINUSE'
          ? `port ${port} is in use; omit port to get a free one, or stop what listens there`
          : 'omit port to get a free one'
      reject(new Error(`TcpFaultProxy cannot listen on ${HOST}:${port} (${error.message}); ${hint}.`, { cause: error }))
    })
    server.listen({ host: HOST, port, exclusive: true }, () => {
      server.removeAllListeners('error')
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : port)
    })
  })
}
