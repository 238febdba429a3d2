import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import { checkOptions } from '../routemq/plugin-api.js'
import { safeLogger, silentLogger, type Logger } from '../routemq/plugin-api.js'
import type { MetricsSource } from './metrics-source.js'
import { capConnections } from './cap-connections.js'
import { resolveHealthHttpLimits, type HealthHttpLimits, type HealthHttpOptions } from './health-http-options.js'
import type { HealthMonitor } from './health-monitor.js'
import { HEALTH_SERVER_OPTIONS_SHAPE } from './health-server-options-shape.js'
import { livenessResponse, readinessResponse, type HealthResponse } from './health-response.js'
import { scrubSecrets } from './scrub-secrets.js'
import { STATUS_PAGE_CSP } from './status-page-html.js'
import type { StatusPage } from './status-page.js'

/** Options of `HealthServer`: where it listens and its limits (`HealthHttpOptions`), and what it serves. */
export interface HealthServerOptions extends HealthHttpOptions {
  readonly monitor: HealthMonitor
  /** Served on `/metrics` (a `LoadBalancingMetrics`); without it `/metrics` answers 404. */
  readonly metrics?: MetricsSource
  /** Whether the app's transport is connected; `undefined` while there is none. Readiness needs `true`. */
  readonly transportConnected?: () => boolean | undefined
  /** Served on `/status` (HTML) and `/status.json`; without it both answer 404. */
  readonly statusPage?: StatusPage
  readonly logger?: Logger
}

const HEALTH_JSON = 'application/health+json'

/**
 * `/health` (liveness), `/ready` (readiness), `/metrics` (Prometheus) and
 * the status page (`/status`, `/status.json`) on node:http. Bodies are built from the monitor's latest results, so an
 * answer never waits for a check; none holds a URL or a secret. Clients
 * that are slow to send their request or to read the answer are cut off,
 * and connections are capped (`HealthHttpLimits`), so that stalled clients
 * can neither starve the probes nor take the process's file descriptors.
 *
 * @example
 * const server = new HealthServer({ monitor, metrics, host: '0.0.0.0', port: 9464 })
 * await server.start()
 */
export class HealthServer {
  readonly #options: HealthServerOptions
  readonly #log: Logger
  readonly #server: Server
  readonly #started = Date.now()
  #shuttingDown = false
  #listening: Promise<void> | undefined

  constructor(options: HealthServerOptions) {
    checkOptions(options, HEALTH_SERVER_OPTIONS_SHAPE, 'health')
    const limits = resolveHealthHttpLimits(options)
    this.#options = Object.freeze({ ...options })
    this.#log = safeLogger(options.logger ?? silentLogger)
    this.#server = createServer({
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      // node:http enforces both timeouts only when it sweeps its connections (every 30 s by default):
      // sweeping every fifth of the header timeout, at most every second, cuts a stalled client soon after it expires.
      connectionsCheckingInterval: Math.min(1000, Math.max(10, Math.floor(limits.headersTimeoutMs / 5))),
    }, (request, response) => this.#answer(request, response))
    this.#server.keepAliveTimeout = limits.keepAliveTimeoutMs
    // With no 'timeout' listener, node:http destroys a socket idle this long.
    this.#server.setTimeout(limits.idleTimeoutMs)
    capConnections(this.#server, limits.maxConnections)
    // 'error' after listening (accept failing, say) would crash the process unheard; a failed listen rejects start() instead.
    this.#server.on('error', (error: NodeJS.ErrnoException) => {
      if (!this.#server.listening) return
      this.#log.error('the health endpoints\' server failed; it keeps listening, but /health, /ready and /metrics may not answer until the cause is fixed', {
        code: error?.code,
        error: scrubSecrets(error instanceof Error ? error.message : String(error)),
      })
    })
  }

  /** The limits in force, as node:http holds them. */
  get limits(): HealthHttpLimits {
    const server = this.#server
    return Object.freeze({
      headersTimeoutMs: server.headersTimeout,
      requestTimeoutMs: server.requestTimeout,
      keepAliveTimeoutMs: server.keepAliveTimeout,
      idleTimeoutMs: server.timeout,
      maxConnections: server.maxConnections,
    })
  }

  /** Listens; rejects with `InvalidOptionError` naming `health.port` when the address is taken. */
  start(): Promise<void> {
    this.#listening ??= new Promise<void>((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException): void => {
        this.#listening = undefined
        const where = `${this.#options.host ?? '127.0.0.1'}:${this.#options.port ?? 9464}`
        reject(error.code === 'EADDRINUSE' || error.code === 'EACCES'
          ? new InvalidOptionError('health.port', `cannot listen on ${where} (${error.code}); choose another port`)
          : error)
      }
      this.#server.once('error', failed)
      this.#server.listen(this.#options.port ?? 9464, this.#options.host ?? '127.0.0.1', () => {
        this.#server.off('error', failed)
        resolve()
      })
    })
    return this.#listening
  }

  /** The port listened on, once started. */
  get port(): number | undefined {
    const address = this.#server.address()
    return address && typeof address === 'object' ? address.port : undefined
  }

  /** `http://host:port`, once started. */
  get url(): string | undefined {
    const port = this.port
    if (port === undefined) return undefined
    const host = this.#options.host ?? '127.0.0.1'
    const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host
    return `http://${shown}:${port}`
  }

  /** From now on `/ready` fails, so balancers and Kubernetes stop sending work. */
  beginShutdown(): void {
    this.#shuttingDown = true
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown
  }

  /** Stops listening and closes open connections. */
  async close(): Promise<void> {
    if (!this.#server.listening) return
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
    this.#listening = undefined
  }

  /**
   * Serves one request; nothing it calls (the monitor, `transportConnected`, the metrics) can throw out of
   * node:http's handler, where an error would end the process: the request is answered 500 and the error logged.
   */
  #answer(request: IncomingMessage, response: ServerResponse): void {
    try {
      this.#serve(request, response)
    } catch (error) {
      this.#failed(response, 'answering a health request failed', error, { path: scrubSecrets((request.url ?? '/').split('?', 1)[0]!) })
    }
  }

  #failed(response: ServerResponse, message: string, error: unknown, fields: Readonly<Record<string, unknown>> = {}): void {
    this.#log.error(message, { ...fields, error: describe(error) })
    if (response.headersSent) {
      response.destroy()
      return
    }
    response.writeHead(500, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(`${message}; see the application log\n`)
  }

  #serve(request: IncomingMessage, response: ServerResponse): void {
    const path = (request.url ?? '/').split('?', 1)[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('use GET or HEAD\n')
      return
    }
    const head = request.method === 'HEAD'
    const summary = () => this.#options.monitor.summary()
    switch (path) {
      case '/health':
      case '/healthz':
      case '/live':
        return send(response, livenessResponse(summary(), (Date.now() - this.#started) / 1000), head)
      case '/ready':
      case '/readyz':
        return send(response, readinessResponse(summary(), {
          transportConnected: this.#options.transportConnected?.(),
          shuttingDown: this.#shuttingDown,
        }), head)
      case '/metrics':
        return this.#metrics(response, head)
      case '/status':
      case '/status.json':
        return this.#status(response, head, path === '/status')
      default:
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /health, /ready, /metrics or /status\n')
    }
  }

  #metrics(response: ServerResponse, head: boolean): void {
    const metrics = this.#options.metrics
    if (!metrics) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are not enabled\n')
      return
    }
    metrics.text().then(
      (text) => {
        response.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' })
        response.end(head ? undefined : text)
      },
    ).catch((error: unknown) => this.#failed(response, 'collecting metrics failed', error))
  }

  #status(response: ServerResponse, head: boolean, html: boolean): void {
    const page = this.#options.statusPage
    if (!page) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('the status page is not enabled\n')
      return
    }
    const body = html ? page.html : JSON.stringify(page.report())
    response.writeHead(200, {
      'content-type': html ? 'text/html; charset=utf-8' : 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      ...(html ? { 'content-security-policy': STATUS_PAGE_CSP, 'x-frame-options': 'DENY' } : {}),
    })
    response.end(head ? undefined : body)
  }
}

function send(response: ServerResponse, body: HealthResponse, head: boolean): void {
  const text = JSON.stringify(body)
  response.writeHead(body.status === 'fail' ? 503 : 200, {
    'content-type': HEALTH_JSON,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  })
  response.end(head ? undefined : text)
}

/** The error as scrubbed text; a value whose conversion to text throws is not shown. */
function describe(error: unknown): string {
  try {
    return scrubSecrets(error instanceof Error ? `${error.name}: ${error.message}` : String(error))
  } catch {
    return 'an error that cannot be shown as text'
  }
}
