import assert from 'node:assert/strict'
import { collectDefaultMetrics, Registry } from 'prom-client'
import {
  GracefulShutdown, HEALTH_HTTP_DEFAULTS, HealthModule, HealthMonitor, HealthServer, InvalidOptionError, LoadBalancingMetrics, silentLogger,
} from '../../src/index.js'

describe('HealthModule options', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a source without healthChecks()', { sources: [{}] }, 'health.sources[0]'],
    ['a port out of range', { http: { port: 65_536 } }, 'health.http.port'],
    ['a fractional port', { http: { port: 80.5 } }, 'health.http.port'],
    ['an empty host', { http: { host: '' } }, 'health.http.host'],
    ['a negative drain delay', { shutdown: { drainDelayMs: -1 } }, 'health.shutdown.drainDelayMs'],
    ['a signal that is no signal', { shutdown: { signals: ['TERM'] } }, 'health.shutdown.signals[0]'],
    ['a drain delay no timer can wait', { shutdown: { drainDelayMs: 3e9 } }, 'health.shutdown.drainDelayMs'],
    ['a check with a bad timeout', { checks: [{ name: 'db', check: () => undefined, timeoutMs: 'soon' }] }, 'health.checks[0].timeoutMs'],
    ['a misspelt HTTP option', { http: { maxConection: 10 } }, 'health.http.maxConection'],
    ['HTTP options that are no object', { http: 9464 }, 'health.http'],
    ['no connections at all', { http: { maxConnections: 0 } }, 'health.http.maxConnections'],
    ['a fractional connection cap', { http: { maxConnections: 2.5 } }, 'health.http.maxConnections'],
    ['a cap of one connection, which leaves none once one is kept free', { http: { maxConnections: 1 } }, 'health.http.maxConnections'],
    ['a connection cap beyond any file descriptor limit', { http: { maxConnections: 1e9 } }, 'health.http.maxConnections'],
    ['a headers timeout of zero, which Node reads as none', { http: { headersTimeoutMs: 0 } }, 'health.http.headersTimeoutMs'],
    ['a request timeout that is no number', { http: { requestTimeoutMs: '5s' } }, 'health.http.requestTimeoutMs'],
    ['a keep-alive timeout no timer can wait', { http: { keepAliveTimeoutMs: 3e9 } }, 'health.http.keepAliveTimeoutMs'],
    ['a negative idle timeout', { http: { idleTimeoutMs: -1 } }, 'health.http.idleTimeoutMs'],
    ['a headers timeout longer than the request timeout', { http: { headersTimeoutMs: 20_000, requestTimeoutMs: 10_000 } }, 'health.http.headersTimeoutMs'],
  ]
  for (const [what, options, field] of cases) {
    it(`names ${field} for ${what}, when the module is created`, () => {
      assert.throws(() => new HealthModule(options), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }

  it('refuses shutdown signals that do not ask for a stop, saying why, and takes those that do', () => {
    const why: Record<string, RegExp> = {
      SIGCHLD: /child process ends/, SIGWINCH: /resized/, SIGCONT: /resumes/, SIGURG: /urgent/, SIGPIPE: /closed pipe/,
      SIGUSR1: /inspector/, SIGTSTP: /pause/, SIGALRM: /alarm/,
    }
    for (const [signal, reason] of Object.entries(why)) {
      assert.throws(
        () => new HealthModule({ http: false, shutdown: { signals: ['SIGTERM', signal as NodeJS.Signals] } }),
        (e: unknown) => e instanceof InvalidOptionError && e.field === 'health.shutdown.signals[1]' && reason.test(e.message) && /'SIGTERM'/.test(e.message),
        signal,
      )
    }
    const steps = { beginShutdown: () => undefined, stop: async () => undefined, logger: silentLogger }
    assert.throws(() => new GracefulShutdown({ signals: ['SIGCHLD'] }, steps), /child process ends/)
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2'] as const) {
      assert.doesNotThrow(() => new HealthModule({ http: false, shutdown: { signals: [signal] } }), signal)
    }
  })

  it('shares a registry that already collects the default metrics', async () => {
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const metrics = new LoadBalancingMetrics({ registry })
    assert.match(await metrics.text(), /routemq_health_score/)
    assert.match(await metrics.text(), /process_cpu_user_seconds_total/)
  })

  it('takes an existing metrics registry, or none', () => {
    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    assert.equal(new HealthModule({ metrics, http: false, shutdown: false }).metrics, metrics)
    assert.equal(new HealthModule({ metrics: false, http: false, shutdown: false }).metrics, undefined)
  })

  it('suggests the option a misspelt HTTP option was meant to be', () => {
    assert.throws(() => new HealthModule({ http: { headerTimeoutMs: 1000 } } as never), /did you mean health\.http\.headersTimeoutMs/)
  })

  it('hands its HTTP limits to the server', () => {
    const http = { headersTimeoutMs: 2000, requestTimeoutMs: 3000, keepAliveTimeoutMs: 1000, idleTimeoutMs: 4000, maxConnections: 5 }
    assert.deepEqual(new HealthModule({ http, shutdown: false }).server!.limits, http)
  })

  it('refuses a programmatic shutdown before it started', async () => {
    await assert.rejects(new HealthModule({ http: false }).shutdown(), (e: unknown) => e instanceof InvalidOptionError && e.field === 'health.shutdown')
  })
})

describe('HealthServer limits', () => {
  it('are tight by default, for probes and scrapes that send one small GET and read the answer at once', () => {
    const limits = new HealthServer({ monitor: new HealthMonitor() }).limits
    assert.deepEqual(limits, HEALTH_HTTP_DEFAULTS)
    assert.ok(limits.headersTimeoutMs <= 5000, `headersTimeoutMs ${limits.headersTimeoutMs}`)
    assert.ok(limits.requestTimeoutMs <= 10_000, `requestTimeoutMs ${limits.requestTimeoutMs}`)
    assert.ok(limits.keepAliveTimeoutMs <= 5000, `keepAliveTimeoutMs ${limits.keepAliveTimeoutMs}`)
    assert.ok(limits.idleTimeoutMs > 0 && limits.idleTimeoutMs <= 10_000, `idleTimeoutMs ${limits.idleTimeoutMs}`)
    assert.ok(limits.maxConnections > 0 && limits.maxConnections <= 64, `maxConnections ${limits.maxConnections}`)
  })
})

describe('GracefulShutdown', () => {
  it('fails readiness first, waits the drain delay, then stops, once however often it is asked', async () => {
    const steps: string[] = []
    const shutdown = new GracefulShutdown({ drainDelayMs: 30, exit: false }, {
      beginShutdown: () => steps.push('not ready'),
      stop: async () => {
        steps.push('stop')
      },
      logger: silentLogger,
    })
    const started = performance.now()
    await Promise.all([shutdown.shutdown(), shutdown.shutdown()])
    assert.deepEqual(steps, ['not ready', 'stop'])
    assert.ok(performance.now() - started >= 25, 'waited the drain delay')
  })

  it('takes its signal handlers away once a shutdown that does not exit is over', async () => {
    const before = process.listenerCount('SIGTERM')
    let stopped!: () => void
    const stopping = new Promise<void>((resolve) => (stopped = resolve))
    const shutdown = new GracefulShutdown({ drainDelayMs: 0, exit: false }, {
      beginShutdown: () => undefined,
      stop: () => stopping,
      logger: silentLogger,
    })
    shutdown.install()
    assert.equal(process.listenerCount('SIGTERM'), before + 1)
    const done = shutdown.shutdown()
    shutdown.uninstall()
    assert.equal(process.listenerCount('SIGTERM'), before + 1, 'kept while stopping, so a second signal still exits')
    stopped()
    await done
    assert.equal(process.listenerCount('SIGTERM'), before)
  })
})
