import assert from 'node:assert/strict'
import { GracefulShutdown, HealthModule, InvalidOptionError, LoadBalancingMetrics, silentLogger } from '../../src/index.js'

describe('HealthModule options', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['a source without healthChecks()', { sources: [{}] }, 'health.sources[0]'],
    ['a port out of range', { http: { port: 65_536 } }, 'health.port'],
    ['a fractional port', { http: { port: 80.5 } }, 'health.port'],
    ['an empty host', { http: { host: '' } }, 'health.host'],
    ['a negative drain delay', { shutdown: { drainDelayMs: -1 } }, 'health.shutdown.drainDelayMs'],
    ['a signal that is no signal', { shutdown: { signals: ['TERM'] } }, 'health.shutdown.signals'],
  ]
  for (const [what, options, field] of cases) {
    it(`names ${field} for ${what}, when the module is created`, () => {
      assert.throws(() => new HealthModule(options as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }

  it('takes an existing metrics registry, or none', () => {
    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    assert.equal(new HealthModule({ metrics, http: false, shutdown: false }).metrics, metrics)
    assert.equal(new HealthModule({ metrics: false, http: false, shutdown: false }).metrics, undefined)
  })

  it('refuses a programmatic shutdown before it started', () => {
    assert.throws(() => new HealthModule({ http: false }).shutdown(), (e: unknown) => e instanceof InvalidOptionError && e.field === 'health.shutdown')
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
})
