import assert from 'node:assert/strict'
import {
  BackendSet, createStrategy, LeastOutstandingStrategy, P2cEwmaStrategy, PriorityStrategy, RoundRobinStrategy,
  STRATEGY_NAMES, WeightedStrategy, type BackendOptions, type BalancingStrategy,
} from '../../src/balancing/index.js'
import { seededRandom } from '../support/seeded-random.js'

function backends(count: number, weights: number[] = []): BackendOptions<string>[] {
  return Array.from({ length: count }, (_, i) => ({ id: `b${i}`, target: `t${i}`, weight: weights[i] ?? 1 }))
}

function tally(set: BackendSet<string>, picks: number): Map<string, number> {
  const counts = new Map<string, number>()
  for (let i = 0; i < picks; i++) {
    const id = set.pick()?.id ?? 'none'
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

describe('every balancing strategy', () => {
  for (const name of STRATEGY_NAMES) {
    describe(name, () => {
      const strategy = (): BalancingStrategy => createStrategy(name, seededRandom(7))

      it('picks nothing from no candidates and the only one from one', () => {
        assert.equal(strategy().pick([]), undefined)
        const set = new BackendSet(backends(1), { strategy: strategy() })
        assert.equal(set.pick()?.id, 'b0')
      })

      it('never picks an unhealthy or ejected backend, and picks again once they are back', () => {
        let now = 1000
        const set = new BackendSet(backends(3), { strategy: strategy(), now: () => now, ejection: { baseMs: 500 } })
        const [b0, b1] = set.backends
        set.markDown(b0!)
        set.reportSuccess(b1!)
        set.reportFailure(b1!, { eject: true })
        assert.equal(b1!.state, 'healthy', 'one failure is below the fall threshold; the ejection alone keeps it out')
        assert.deepEqual([...tally(set, 300).keys()], ['b2'])
        now += 500
        set.reportSuccess(b0!)
        set.reportSuccess(b0!)
        assert.equal(tally(set, 300).size, name === 'priority' ? 1 : 3)
      })

      it('returns undefined when every backend is down', () => {
        const set = new BackendSet(backends(2), { strategy: strategy() })
        for (const backend of set.backends) set.markDown(backend)
        assert.equal(set.pick(), undefined)
      })

      it('honours exclude and falls back from an unavailable preference', () => {
        const set = new BackendSet(
          backends(3).map((b, i) => ({ ...b, region: i === 0 ? 'eu' : 'us' })),
          { strategy: strategy() },
        )
        const [eu] = set.backends
        for (let i = 0; i < 50; i++) {
          assert.notEqual(set.pick({ exclude: eu! })?.id, 'b0')
          assert.equal(set.pick({ prefer: (b) => b.region === 'eu' })?.id, 'b0')
        }
        set.markDown(eu!)
        assert.ok(['b1', 'b2'].includes(set.pick({ prefer: (b) => b.region === 'eu' })!.id))
      })
    })
  }
})

describe('strategy behaviour', () => {
  it('round robin takes each available backend in turn, skipping unhealthy ones', () => {
    const set = new BackendSet(backends(3), { strategy: new RoundRobinStrategy() })
    assert.deepEqual(Array.from({ length: 6 }, () => set.pick()!.id), ['b0', 'b1', 'b2', 'b0', 'b1', 'b2'])
    set.markDown(set.backends[1]!)
    const picks = Array.from({ length: 6 }, () => set.pick()!.id)
    assert.ok(!picks.includes('b1'))
    assert.deepEqual(new Set(picks), new Set(['b0', 'b2']))
  })

  it('weighted stays within ±3 % of the weights over 30 000 picks', () => {
    const weights = [5, 3, 2]
    const set = new BackendSet(backends(3, weights), { strategy: new WeightedStrategy() })
    const counts = tally(set, 30_000)
    weights.forEach((weight, i) => {
      const share = counts.get(`b${i}`)! / 30_000
      const expected = weight / 10
      assert.ok(Math.abs(share - expected) <= 0.03 * expected, `b${i}: ${share} vs ${expected}`)
    })
  })

  it('weighted interleaves picks instead of sending runs to the heaviest', () => {
    const set = new BackendSet(backends(3, [5, 1, 1]), { strategy: new WeightedStrategy() })
    assert.deepEqual(Array.from({ length: 7 }, () => set.pick()!.id), ['b0', 'b0', 'b1', 'b0', 'b2', 'b0', 'b0'])
  })

  it('least latency prefers the faster of two backends at least 90 % of the time when one is 10x slower', () => {
    const set = new BackendSet(backends(2), { strategy: new P2cEwmaStrategy(seededRandom(3)) })
    const [fast, slow] = set.backends
    set.reportSuccess(fast!, 5)
    set.reportSuccess(slow!, 50)
    const share = tally(set, 10_000).get('b0')! / 10_000
    assert.ok(share >= 0.9, `fast share ${share}`)
  })

  it('least latency among many avoids a slow backend but keeps using the rest', () => {
    const set = new BackendSet(backends(4), { strategy: new P2cEwmaStrategy(seededRandom(5)) })
    set.backends.forEach((b, i) => set.reportSuccess(b, i === 3 ? 100 : 10))
    const counts = tally(set, 10_000)
    assert.ok((counts.get('b3') ?? 0) / 10_000 < 0.05)
    for (const id of ['b0', 'b1', 'b2']) assert.ok(counts.get(id)! / 10_000 > 0.25, id)
  })

  it('least outstanding picks the backend with the fewest requests in flight', () => {
    const set = new BackendSet(backends(3), { strategy: new LeastOutstandingStrategy() })
    const [b0, b1] = set.backends
    const done = [b0!.begin(), b0!.begin(), b1!.begin()]
    assert.equal(set.pick()?.id, 'b2')
    done.forEach((d) => d())
    assert.equal(b0!.outstanding, 0)
  })

  it('priority uses the first backend, the next while it is down, and the first again when it recovers', () => {
    const set = new BackendSet(backends(3), { strategy: new PriorityStrategy(), health: { rise: 2 } })
    const [first] = set.backends
    assert.equal(set.pick()?.id, 'b0')
    set.markDown(first!)
    assert.equal(set.pick()?.id, 'b1')
    set.reportSuccess(first!)
    assert.equal(set.pick()?.id, 'b1', 'one success does not bring it back (rise 2)')
    set.reportSuccess(first!)
    assert.equal(set.pick()?.id, 'b0')
  })
})
