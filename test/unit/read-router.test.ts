import assert from 'node:assert/strict'
import FakeTimers from '@sinonjs/fake-timers'
import type { Backend } from '../../src/balancing/backend.js'
import { BackendSet } from '../../src/balancing/backend-set.js'
import { RoundRobinStrategy } from '../../src/balancing/round-robin-strategy.js'
import { ReadRouter } from '../../plugins/kysely/read-router.js'

/** Replicas with positions and lags a test sets, answering "where are you" as the test says. */
class Replicas {
  readonly set: BackendSet<string>
  readonly positions = new Map<string, bigint>()
  readonly lags = new Map<string, number>()
  /** What each replica answers when asked, by id: a position, or 'silent' (never answers). */
  readonly answers = new Map<string, bigint[] | 'silent'>()
  readonly asked: string[] = []

  constructor(ids: readonly { id: string; region?: string }[]) {
    this.set = new BackendSet(ids.map(({ id, region }) => ({ id, target: id, region })), { strategy: new RoundRobinStrategy() })
    for (const backend of this.set.backends) this.set.reportSuccess(backend)
  }

  get all(): readonly Backend<string>[] {
    return this.set.backends
  }

  router(waitMs: number, region?: string): ReadRouter<string> {
    return new ReadRouter(
      {
        set: this.set,
        position: (replica) => this.positions.get(replica.id),
        lagMs: (replica) => this.lags.get(replica.id),
        ask: (replica) => {
          this.asked.push(replica.id)
          const answers = this.answers.get(replica.id)
          if (answers === 'silent') return new Promise(() => {})
          const next = answers?.shift() ?? this.positions.get(replica.id)
          if (next !== undefined) this.positions.set(replica.id, next)
          return Promise.resolve(next)
        },
      },
      { region, waitMs },
    )
  }
}

describe('ReadRouter, which replica serves a read', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => (clock = FakeTimers.install({ now: 1_000_000 })))
  afterEach(() => clock.uninstall())

  it("prefers the message's region, then the pool's own, then any", () => {
    const replicas = new Replicas([{ id: 'eu', region: 'europe' }, { id: 'us', region: 'americas' }, { id: 'ap', region: 'asia' }])
    const router = replicas.router(50, 'americas')
    assert.equal((router.pick(replicas.all, undefined, undefined, 'europe') as Backend<string>).id, 'eu')
    assert.equal((router.pick(replicas.all, undefined, undefined, 'africa') as Backend<string>).id, 'us')
    const withoutHome = replicas.all.filter((r) => r.id !== 'us')
    assert.ok(['eu', 'ap'].includes((router.pick(withoutHome, undefined, undefined, 'africa') as Backend<string>).id))
  })

  it('sends a read that needs a position to a replica known to have it, without asking', () => {
    const replicas = new Replicas([{ id: 'a' }, { id: 'b' }])
    replicas.positions.set('a', 90n).set('b', 120n)
    const picked = replicas.router(50).pick(replicas.all, undefined, 100n, undefined)
    assert.equal((picked as Backend<string>).id, 'b')
    assert.deepEqual(replicas.asked, [])
  })

  it('asks the replicas again and again until one has replayed the write, within the wait', async () => {
    const replicas = new Replicas([{ id: 'a' }, { id: 'b' }])
    replicas.positions.set('a', 90n).set('b', 90n)
    replicas.answers.set('a', [95n, 99n, 99n, 150n]).set('b', [91n, 92n, 93n, 94n])
    const picked = replicas.router(50).pick(replicas.all, undefined, 100n, undefined) as Promise<Backend<string> | undefined>
    assert.ok(picked instanceof Promise)
    await clock.tickAsync(10)
    assert.equal((await picked)?.id, 'a')
    assert.deepEqual(replicas.asked, ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b'])
    assert.equal(replicas.positions.get('a'), 150n)
  })

  it('gives up after waitMs, leaving the read to the primary, and never waits on a replica that does not answer', async () => {
    const replicas = new Replicas([{ id: 'a' }, { id: 'b' }])
    replicas.answers.set('a', 'silent').set('b', Array<bigint>(1000).fill(10n))
    const picked = replicas.router(50).pick(replicas.all, undefined, 100n, undefined) as Promise<Backend<string> | undefined>
    let settled = false
    void picked.then(() => (settled = true))
    await clock.tickAsync(49)
    assert.equal(settled, false, 'still waiting within waitMs')
    await clock.tickAsync(1)
    assert.equal(await picked, undefined)
  })

  it('does not wait for a replica measured further behind than the wait, and prefers the fresh one', async () => {
    const replicas = new Replicas([{ id: 'late' }, { id: 'fresh' }])
    replicas.lags.set('late', 300).set('fresh', 1)
    replicas.positions.set('late', 10n).set('fresh', 99n)
    replicas.answers.set('fresh', [100n])
    const picked = replicas.router(50).pick(replicas.all, undefined, 100n, undefined)
    assert.equal((await picked)?.id, 'fresh')
    assert.deepEqual(replicas.asked, ['fresh'])
    replicas.lags.set('fresh', 400)
    assert.equal(await replicas.router(50).pick(replicas.all, undefined, 200n, undefined), undefined, 'nobody near enough: the primary at once')
  })

  it('with waitMs 0, sends a read no replica is known to have straight to the primary', () => {
    const replicas = new Replicas([{ id: 'a' }])
    replicas.positions.set('a', 90n)
    assert.equal(replicas.router(0).pick(replicas.all, undefined, 100n, undefined), undefined)
    assert.deepEqual(replicas.asked, [])
  })

  it('leaves out replicas already tried for this read', () => {
    const replicas = new Replicas([{ id: 'a' }, { id: 'b' }])
    replicas.positions.set('a', 200n).set('b', 200n)
    const tried = new Set([replicas.all[0]!])
    assert.equal((replicas.router(50).pick(replicas.all, tried, 100n, undefined) as Backend<string>).id, 'b')
    assert.equal((replicas.router(50).pick(replicas.all, tried, undefined, undefined) as Backend<string>).id, 'b')
  })

  it('does not wait for an ejected replica, however near it was', () => {
    const replicas = new Replicas([{ id: 'a' }])
    replicas.positions.set('a', 90n)
    replicas.set.reportFailure(replicas.all[0]!, { eject: true })
    assert.equal(replicas.router(50).pick(replicas.all, undefined, 100n, undefined), undefined, 'the primary at once')
    assert.deepEqual(replicas.asked, [])
  })
})
