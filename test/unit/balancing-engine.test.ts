import assert from 'node:assert/strict'
import {
  BackendSet, DecorrelatedJitterBackoff, Ewma, HealthTracker, RoundRobinStrategy, type BackendStateChange,
} from '../../src/balancing/index.js'
import { TypedEvent } from '../../src/typed-event.js'
import { seededRandom } from '../support/seeded-random.js'

describe('HealthTracker', () => {
  it('lets the first result decide, then needs rise successes or fall failures in a row', () => {
    const health = new HealthTracker({ rise: 2, fall: 3 })
    assert.equal(health.state, 'unknown')
    assert.equal(health.success(), 'healthy')
    assert.equal(health.failure(), undefined)
    assert.equal(health.failure(), undefined)
    assert.equal(health.success(), undefined, 'a success resets the failure streak')
    assert.equal(health.failure(), undefined)
    assert.equal(health.failure(), undefined)
    assert.equal(health.failure(), 'unhealthy')
    assert.equal(health.success(), undefined)
    assert.equal(health.success(), 'healthy')
  })

  it('goes down at once on down(), from any state', () => {
    const health = new HealthTracker({ fall: 5 })
    health.success()
    assert.equal(health.down(), 'unhealthy')
    assert.equal(health.down(), undefined)
  })
})

describe('DecorrelatedJitterBackoff', () => {
  it('stays within base and cap, grows towards the cap, and restarts after reset', () => {
    const backoff = new DecorrelatedJitterBackoff({ baseMs: 250, capMs: 30_000, random: seededRandom(11) })
    const delays = Array.from({ length: 40 }, () => backoff.next())
    for (const delay of delays) assert.ok(delay >= 250 && delay <= 30_000, String(delay))
    assert.ok(Math.max(...delays.slice(20)) > 10_000, 'a long outage reaches long delays')
    backoff.reset()
    assert.ok(backoff.next() <= 750, 'after a reset the first delay is at most 3x the base')
  })

  it('spreads clients that fail together', () => {
    const first = Array.from({ length: 20 }, (_, seed) => new DecorrelatedJitterBackoff({ random: seededRandom(seed) }).next())
    assert.ok(new Set(first.map((d) => Math.round(d))).size >= 15)
  })
})

describe('Ewma', () => {
  it('starts at the first sample and weighs an old average by half after one half-life', () => {
    const ewma = new Ewma(1000)
    assert.equal(ewma.value, undefined)
    ewma.observe(100, 0)
    assert.equal(ewma.value, 100)
    ewma.observe(200, 1000)
    assert.equal(ewma.value, 150)
    ewma.observe(200, 1000)
    assert.equal(ewma.value, 150, 'no time passed: the new sample has no weight yet')
  })
})

describe('BackendSet', () => {
  it('announces each health transition once with where it came from', () => {
    const set = new BackendSet([{ id: 'a', target: 1 }], { strategy: new RoundRobinStrategy(), health: { rise: 2, fall: 2 } })
    const changes: string[] = []
    const off = set.onStateChange((c: BackendStateChange<number>) => changes.push(`${c.backend.id} ${c.from}->${c.to}`))
    const [a] = set.backends
    set.reportSuccess(a!)
    set.reportFailure(a!)
    set.reportFailure(a!)
    set.reportFailure(a!)
    set.reportSuccess(a!)
    set.reportSuccess(a!)
    set.markDown(a!)
    off()
    set.reportSuccess(a!)
    set.reportSuccess(a!)
    assert.deepEqual(changes, ['a unknown->healthy', 'a healthy->unhealthy', 'a unhealthy->healthy', 'a healthy->unhealthy'])
  })

  it('ejects for a time that doubles up to the maximum and is forgiven after a healthy streak', () => {
    let now = 0
    const set = new BackendSet([{ id: 'a', target: 1 }, { id: 'b', target: 2 }], {
      strategy: new RoundRobinStrategy(), now: () => now, ejection: { baseMs: 100, maxMs: 350 }, health: { rise: 2, fall: 10 },
    })
    const durations: number[] = []
    set.onEjection((e) => durations.push(e.durationMs))
    const [a] = set.backends
    set.reportSuccess(a!)
    for (let i = 0; i < 4; i++) set.reportFailure(a!, { eject: true })
    assert.deepEqual(durations, [100, 200, 350, 350])
    assert.equal(a!.isAvailable(now), false)
    now = a!.ejectedUntil
    assert.equal(a!.isAvailable(now), true)
    set.reportSuccess(a!)
    set.reportSuccess(a!)
    set.reportFailure(a!, { eject: true })
    assert.equal(durations.at(-1), 100)
  })

  it('feeds latency samples into the backend average', () => {
    const set = new BackendSet([{ id: 'a', target: 1 }], { strategy: new RoundRobinStrategy(), now: () => 0 })
    set.reportSuccess(set.backends[0]!, 42)
    assert.equal(set.backends[0]!.latencyMs, 42)
  })
})

describe('TypedEvent', () => {
  it('delivers to every listener, isolates one that throws, and stops after the disposer', () => {
    const errors: unknown[] = []
    const event = new TypedEvent<number>((e) => errors.push(e))
    const seen: number[] = []
    const off = event.on((n) => seen.push(n))
    event.on(() => { throw new Error('bad listener') })
    event.on((n) => seen.push(n * 10))
    event.emit(1)
    off()
    off()
    event.emit(2)
    assert.deepEqual(seen, [1, 10, 20])
    assert.equal(errors.length, 2)
  })
})

describe('LatencyWindow', () => {
  it('gives nearest-rank percentiles over the last samples only', async () => {
    const { LatencyWindow } = await import('../../src/balancing/index.js')
    const window = new LatencyWindow(100)
    assert.equal(window.percentile(0.99), undefined)
    for (let i = 1; i <= 100; i++) window.record(i)
    assert.equal(window.percentile(0.99), 99)
    assert.equal(window.percentile(0.5), 50)
    for (let i = 0; i < 100; i++) window.record(1000)
    assert.equal(window.percentile(0.5), 1000, 'old samples are forgotten')
  })
})
