import assert from 'node:assert/strict'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { GracefulShutdown, HealthModule, InvalidOptionError, LoadBalancingMetrics, silentLogger } from '../../src/index.js'

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
  ]
  for (const [what, options, field] of cases) {
    it(`names ${field} for ${what}, when the module is created`, () => {
      assert.throws(() => new HealthModule(options as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }

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

  it('refuses a programmatic shutdown before it started', async () => {
    await assert.rejects(new HealthModule({ http: false }).shutdown(), (e: unknown) => e instanceof InvalidOptionError && e.field === 'health.shutdown')
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
