import assert from 'node:assert/strict'
import FakeTimers from '@sinonjs/fake-timers'
import { BackendSet, RoundRobinStrategy, silentLogger } from '../../src/index.js'
import { resolveBrokerPoolOptions, type BrokerEndpoint } from '../../plugins/mqtt/index.js'
import { ProbeScheduler } from '../../plugins/mqtt/probe-scheduler.js'

describe('broker probe scheduling', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => (clock = FakeTimers.install({ now: 0 })))
  afterEach(() => clock.uninstall())

  function scheduler(up: () => boolean) {
    const options = resolveBrokerPoolOptions({ brokers: ['mqtt://b1:1883'] }, 'app-1')
    const set = new BackendSet<BrokerEndpoint>(options.brokers.map((b) => ({ id: b.id, target: b })), { strategy: new RoundRobinStrategy(), health: { rise: 2, fall: 2 } })
    const probedAt: number[] = []
    const probes = new ProbeScheduler({
      set, options, log: silentLogger, onProbe: () => undefined,
      probe: async () => {
        probedAt.push(Date.now())
        if (!up()) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        return 1
      },
    })
    return { set, probes, probedAt, backend: set.backends[0]! }
  }

  it('probes a down broker every probeIntervalMs ± 20 %, without a backoff that grows while it stays down', async () => {
    const { probes, probedAt, backend } = scheduler(() => false)
    probes.start()
    await clock.tickAsync(120_000)
    assert.equal(backend.state, 'unhealthy')
    const gaps = probedAt.slice(3).map((at, i) => at - probedAt[i + 2]!)
    assert.ok(Math.max(...gaps) <= 900, `longest gap ${Math.max(...gaps)} ms`)
    assert.ok(Math.min(...gaps) >= 600, `shortest gap ${Math.min(...gaps)} ms`)
    assert.ok(probedAt.length > 120_000 / 900, `${probedAt.length} probes in 2 minutes`)
    await probes.stop()
  })

  it('finds a broker that comes back healthy within one down interval and rise probes', async () => {
    let up = false
    const { probes, backend } = scheduler(() => up)
    probes.start()
    await clock.tickAsync(30_000)
    assert.equal(backend.state, 'unhealthy')
    up = true
    const back = Date.now()
    while ((backend.state as string) !== 'healthy') await clock.tickAsync(10)
    assert.ok(Date.now() - back <= 900 + 20, `healthy ${Date.now() - back} ms after it came back`)
    await probes.stop()
  })

  it('confirms a first failure at once, and probes a healthy broker every probeIntervalMs', async () => {
    let up = true
    const { probes, probedAt, backend } = scheduler(() => up)
    probes.start()
    await clock.tickAsync(5000)
    assert.equal(backend.state, 'healthy')
    const healthyGaps = probedAt.slice(3).map((at, i) => at - probedAt[i + 2]!)
    assert.ok(healthyGaps.every((gap) => gap === 750), `gaps ${healthyGaps}`)
    up = false
    const failedAt = probedAt.length
    await clock.tickAsync(760)
    assert.equal(backend.state, 'unhealthy', 'fall 2: the second failure follows the first at once')
    assert.equal(probedAt.length - failedAt, 2)
    await probes.stop()
  })
})
