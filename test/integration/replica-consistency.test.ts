import assert from 'node:assert/strict'
import { Kysely, type Generated } from 'kysely'
import pg from 'pg'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { LoadBalancingMetrics } from '../../src/metrics/load-balancing-metrics.js'
import { migrateToLatest, readOnly, ReplicaPool, ReplicatedPostgresDialect, withConsistencyKey, write, type ReplicaPoolOptions } from '../../plugins/kysely/index.js'
import { parsePrometheusText } from '../support/prometheus-text.js'
import { pollUntil } from '../support/poll-until.js'

interface Database {
  settings: { id: Generated<number>; device: string; version: number }
}

/**
 * A primary with two streaming replicas, the first replaying as fast as it
 * can, the second 300 ms late (recovery_min_apply_delay), as the demo runs them.
 */
describe('ReplicaPool read-your-writes on replicas, and lag as it is', function () {
  this.timeout(120_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ replicas: 2, replicaApplyDelayMs: [0, 300] })
    await migrateToLatest(topology.primary!.url)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE settings (id serial PRIMARY KEY, device text NOT NULL, version integer NOT NULL)')
    await admin.end()
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(async () => {
    await topology?.stop()
  })

  async function database(replicas: readonly number[], options: Partial<ReplicaPoolOptions> = {}): Promise<{ db: Kysely<Database>; pool: ReplicaPool }> {
    const pool = await ReplicaPool.create({ primary: topology.primary!.url, replicas: replicas.map((i) => topology.replicas[i]!.url), ...options })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    return { db, pool }
  }

  /** Writes a device's setting, then reads it back in the same consistency scope, `rounds` times; returns the stale reads. */
  async function writeThenRead(db: Kysely<Database>, device: string, rounds: number): Promise<number> {
    let stale = 0
    await write(() => db.insertInto('settings').values({ device, version: 0 }).execute())
    for (let version = 1; version <= rounds; version++) {
      await withConsistencyKey(device, async () => {
        await write(() => db.updateTable('settings').set({ version }).where('device', '=', device).execute())
        const row = await readOnly(() => db.selectFrom('settings').select('version').where('device', '=', device).executeTakeFirst())
        if (row?.version !== version) stale++
      })
    }
    return stale
  }

  /** Keeps writing through `db` every `everyMs` until the returned function is called. */
  function steadyWrites(db: Kysely<Database>, everyMs: number): () => Promise<void> {
    let running = true
    const loop = (async () => {
      await write(() => db.insertInto('settings').values({ device: 'steady', version: 0 }).execute())
      for (let version = 1; running; version++) {
        await write(() => db.updateTable('settings').set({ version }).where('device', '=', 'steady').execute())
        await new Promise((resolve) => setTimeout(resolve, everyMs))
      }
    })()
    return async () => {
      running = false
      await loop
    }
  }

  it('serves at least 90 % of read-your-writes reads from a replica streaming normally, none stale', async () => {
    const { db, pool } = await database([0])
    const rounds = 300
    assert.equal(await writeThenRead(db, 'normal', rounds), 0)
    const { consistentReads, consistentReadsOnReplicas } = pool.stats
    assert.equal(consistentReads, rounds)
    assert.ok(consistentReadsOnReplicas >= 0.9 * rounds, `${consistentReadsOnReplicas} of ${rounds} read-your-writes reads on the replica`)
  })

  it('keeps read-your-writes reads off a replica 300 ms behind, on the fresh one, none stale', async () => {
    const { db, pool } = await database([0, 1])
    const rounds = 300
    assert.equal(await writeThenRead(db, 'two', rounds), 0)
    const [fresh, late] = pool.stats.replicas
    assert.ok(pool.stats.consistentReadsOnReplicas >= 0.9 * rounds, `${pool.stats.consistentReadsOnReplicas} of ${rounds} on replicas`)
    assert.ok(fresh!.queries >= 0.9 * rounds, `fresh replica served ${fresh!.queries}`)
    assert.ok(late!.queries < 0.05 * rounds, `the late replica served ${late!.queries}`)
  })

  it('reports each replica lag within 50 ms of its real apply delay under steady writes, in stats and metrics', async () => {
    const { db, pool } = await database([0, 1])
    const stop = steadyWrites(db, 10)
    try {
      // Past the first probes (the history needs a few samples), then five probe rounds.
      await new Promise((resolve) => setTimeout(resolve, 3000))
      const fresh: number[] = []
      const late: number[] = []
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000))
        fresh.push(pool.stats.replicas[0]!.lagMs!)
        late.push(pool.stats.replicas[1]!.lagMs!)
      }
      // The median of five probes: on a loaded machine the replica's own replay runs late now and then, which is real lag, not an error of the estimate.
      const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
      assert.ok(median(fresh) < 50, `undelayed replica: ${fresh.map(Math.round).join(', ')} ms`)
      assert.ok(median(late) >= 250 && median(late) <= 350, `replica 300 ms behind: ${late.map(Math.round).join(', ')} ms`)
      assert.ok(late.every((ms) => ms >= 200 && ms <= 450), `no probe far off: ${late.map(Math.round).join(', ')} ms`)
      const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
      const unobserve = metrics.observePool(pool)
      const families = parsePrometheusText(await metrics.text())
      const lateSeconds = families.get('routemq_replica_lag_seconds')?.samples.find((s) => s.labels.backend === pool.stats.replicas[1]!.id)?.value
      assert.ok(lateSeconds !== undefined && lateSeconds >= 0.25 && lateSeconds <= 0.35, `metric: ${lateSeconds} s`)
      const latency = (name: string) => families.get(name)?.samples.find((s) => s.labels.backend === pool.stats.primary.id)?.value
      const p50 = latency('routemq_pool_backend_latency_p50_seconds')
      const p99 = latency('routemq_pool_backend_latency_p99_seconds')
      assert.ok(p50 !== undefined && p99 !== undefined && p50 <= p99, `primary's latency metrics: ${p50}, ${p99}`)
      assert.ok(pool.stats.primary.p50LatencyMs! <= pool.stats.primary.p99LatencyMs!)
      unobserve()
    } finally {
      await stop()
    }
  })

  it('gives no reads to a replica past maxLagBytes under steady writes, and takes it back once writes stop', async () => {
    // About 60 updates (a few hundred bytes each) are waiting to be replayed at any time.
    const { db, pool } = await database([1], { maxLagBytes: 2048 })
    const stop = steadyWrites(db, 5)
    try {
      await pollUntil(() => (pool.stats.replicas[0]!.lagBytes ?? 0) > 2048, { timeoutMs: 15_000, everyMs: 50 })
      await pollUntil(async () => (await db.selectFrom('settings').select('id').limit(1).execute(), pool.stats.fallbacksToPrimary > 0), { timeoutMs: 5000, everyMs: 50 })
    } finally {
      await stop()
    }
    await pollUntil(() => pool.stats.replicas[0]!.lagBytes === 0, { timeoutMs: 15_000, everyMs: 50 })
    const before = pool.stats.replicas[0]!.queries
    await pollUntil(async () => (await db.selectFrom('settings').select('id').limit(1).execute(), pool.stats.replicas[0]!.queries > before), { timeoutMs: 5000, everyMs: 50 })
  })
})
