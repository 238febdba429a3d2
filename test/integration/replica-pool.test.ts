import assert from 'node:assert/strict'
import { Kysely, PostgresDialect, sql, type Generated } from 'kysely'
import pg from 'pg'
import { startTopology, type PostgresHandle, type Topology } from '../../src/testing/index.js'
import { MessageContext } from '../../src/index.js'
import { runInMessageScope } from '../../src/routemq/message-scope.js'
import { rootContainerForTests } from '../support/inbound-message.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'
import { InvalidOptionError } from '../../src/routemq/errors/invalid-option-error.js'
import Cursor from 'pg-cursor'
import {
  isPrimaryUnavailableError, isQueryTimeoutError, isReplicaPoolClosedError, isTransactionAbortedError, isWriteInReadOnlyScopeError, migrateToLatest, ReadOnly, readOnly, ReplicaPool,
  ReplicatedPostgresDialect, withConsistencyKey, Write, write, type ReplicaPoolOptions,
} from '../../plugins/kysely/index.js'

interface Database {
  readings: { id: Generated<number>; device: string; value: number }
}

/** The server that answered, as it reports itself. */
async function servedBy(db: Kysely<Database>): Promise<{ port: number; recovery: boolean }> {
  const row = await db
    .selectNoFrom([sql<number>`inet_server_port()`.as('port'), sql<boolean>`pg_is_in_recovery()`.as('recovery')])
    .executeTakeFirstOrThrow()
  return { port: Number(row.port), recovery: row.recovery }
}

describe('ReplicaPool on a real primary with streaming replicas', function () {
  this.timeout(60_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ replicas: 2 })
    await migrateToLatest(topology.primary!.url)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE readings (id serial PRIMARY KEY, device text NOT NULL, value integer NOT NULL)')
    await admin.end()
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(async () => {
    await topology?.stop()
  })

  async function database(options: Partial<ReplicaPoolOptions> = {}): Promise<{ db: Kysely<Database>; pool: ReplicaPool }> {
    const pool = await ReplicaPool.create({
      primary: topology.primary!.url,
      replicas: topology.replicas.map((r) => r.url),
      ...options,
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    return { db, pool }
  }

  it('sends selects to replicas and writes, raw SQL and transactions to the primary, as the servers report', async () => {
    const { db } = await database()
    const replicaPorts = new Set(topology.replicas.map((r) => r.port))
    for (let i = 0; i < 20; i++) {
      const read = await servedBy(db)
      assert.equal(read.recovery, true)
      assert.ok(replicaPorts.has(read.port))
    }
    const written = await db
      .insertInto('readings')
      .values({ device: 'd1', value: 1 })
      .returning([sql<number>`inet_server_port()`.as('port'), sql<boolean>`pg_is_in_recovery()`.as('recovery')])
      .executeTakeFirstOrThrow()
    assert.deepEqual([Number(written.port), written.recovery], [topology.primary!.port, false])
    const raw = await sql<{ port: number }>`select inet_server_port() as port`.execute(db)
    assert.equal(Number(raw.rows[0]!.port), topology.primary!.port)
    const inTransaction = await db.transaction().execute((trx) => servedBy(trx))
    assert.deepEqual(inTransaction, { port: topology.primary!.port, recovery: false })
    const locking = await db.selectFrom('readings').select(sql<number>`inet_server_port()`.as('port')).forUpdate().executeTakeFirstOrThrow()
    assert.equal(Number(locking.port), topology.primary!.port)
  })

  it('returns exactly what PostgresDialect returns, for reads served by a replica and for writes', async () => {
    const { db } = await database({ replicas: [topology.replicas[0]!.url] })
    const plain = (url: string) => new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) })
    const onReplica = plain(topology.replicas[0]!.url)
    const onPrimary = plain(topology.primary!.url)
    cleanup.push(() => onReplica.destroy(), () => onPrimary.destroy())
    await db.insertInto('readings').values([{ device: 'shape', value: 1 }, { device: 'shape', value: 2 }]).execute()
    const reads: ((k: Kysely<Database>) => Promise<unknown>)[] = [
      (k) => k.selectFrom('readings').select(['device', 'value']).where('device', '=', 'shape').orderBy('value').execute(),
      (k) => k.selectFrom('readings').selectAll().where('device', '=', 'no such device').execute(),
      (k) => sql`select 1 as one, 'two' as two`.execute(k),
      // Several statements without parameters: pg answers with an array of results.
      (k) => sql`select 1 as one; select 2 as two`.execute(k),
    ]
    for (const [i, read] of reads.entries()) {
      // Replication has its own clock: compare once the replica has replayed the table and its rows.
      const same = async (): Promise<boolean> => JSON.stringify(await readOnly(() => read(db))) === JSON.stringify(await read(onReplica))
      assert.ok(await waitUntil(() => same().catch(() => false), 5000), `read ${i}`)
      assert.deepEqual(await readOnly(() => read(db)), await read(onReplica), `read ${i}`)
    }
    const writes: ((k: Kysely<Database>) => Promise<unknown>)[] = [
      (k) => k.updateTable('readings').set({ value: 5 }).where('device', '=', 'shape').execute(),
      (k) => k.insertInto('readings').values({ device: 'shape-2', value: 1 }).returning('device').execute(),
      // Deletes the one row the insert before it left.
      (k) => k.deleteFrom('readings').where('device', '=', 'shape-2').executeTakeFirst(),
    ]
    const results = async (k: Kysely<Database>): Promise<unknown[]> => {
      const out: unknown[] = []
      for (const change of writes) out.push(await change(k))
      return out
    }
    assert.deepEqual(await results(db), await results(onPrimary))
  })

  it('streams a read from a replica, in a write scope from the primary, once given pg-cursor', async () => {
    const { db: withoutCursor } = await database()
    await assert.rejects(
      async () => {
        for await (const row of withoutCursor.selectFrom('readings').selectAll().stream()) void row
      },
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'cursor',
    )
    const { db, pool } = await database({ cursor: Cursor })
    await write(() => db.insertInto('readings').values(Array.from({ length: 250 }, (_, i) => ({ device: 'streamed', value: i }))).execute())
    const streamed = async (): Promise<{ ports: Set<number>; values: number[]; outstanding: number }> => {
      const ports = new Set<number>()
      const values: number[] = []
      let outstanding = 0
      const query = db
        .selectFrom('readings')
        .select(['value', sql<number>`inet_server_port()`.as('port')])
        .where('device', '=', 'streamed')
        .orderBy('value')
      for await (const row of query.stream(40)) {
        ports.add(Number(row.port))
        values.push(row.value)
        outstanding = Math.max(outstanding, pool.stats.replicas.reduce((sum, r) => sum + r.outstanding, 0))
      }
      return { ports, values, outstanding }
    }
    const replicaPorts = new Set(topology.replicas.map((r) => r.port))
    // Replication has its own clock: stream once a replica shows all the rows.
    assert.ok(await waitUntil(() => streamed().then((s) => s.values.length === 250, () => false), 5000))
    const fromReplica = await streamed()
    assert.deepEqual(fromReplica.values, Array.from({ length: 250 }, (_, i) => i))
    assert.equal(fromReplica.ports.size, 1)
    assert.ok(replicaPorts.has([...fromReplica.ports][0]!), 'a plain read streams from a replica')
    assert.equal(fromReplica.outstanding, 1, 'the stream counts as in flight on its replica')
    assert.equal(pool.stats.replicas.reduce((sum, r) => sum + r.outstanding, 0), 0)
    const fromPrimary = await write(() => streamed())
    assert.deepEqual([...fromPrimary.ports], [topology.primary!.port])
    assert.equal(fromPrimary.values.length, 250)
  })

  it('ends a stream outside a transaction with the stream: later queries of the connection are routed again', async () => {
    const { db } = await database({ cursor: Cursor })
    const ports = await db.connection().execute(async (connection) => {
      const first = await connection.insertInto('readings').values({ device: 'around-a-stream', value: 1 }).returning(sql<number>`inet_server_port()`.as('port')).executeTakeFirstOrThrow()
      for await (const row of connection.selectFrom('readings').select('id').limit(3).stream()) void row
      const second = await connection.insertInto('readings').values({ device: 'around-a-stream', value: 2 }).returning(sql<number>`inet_server_port()`.as('port')).executeTakeFirstOrThrow()
      return [Number(first.port), Number(second.port)]
    })
    assert.deepEqual(ports, [topology.primary!.port, topology.primary!.port])
  })

  it('lets a stream take longer than the sessions\' statement_timeout, and remembers a streamed write', async () => {
    const { db, pool } = await database({ cursor: Cursor, queryTimeoutMs: 300, consistency: { mode: 'window', windowMs: 60_000 } })
    await write(() => db.insertInto('readings').values(Array.from({ length: 60 }, (_, i) => ({ device: 'slow-stream', value: i }))).execute())
    // statement_timeout is 1375 ms here; this stream is consumed over about 2 s.
    let rows = 0
    await write(async () => {
      for await (const row of db.selectFrom('readings').select('value').where('device', '=', 'slow-stream').stream(10)) {
        void row
        if (++rows % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 350))
      }
    })
    assert.equal(rows, 60)
    await withConsistencyKey('streamed-write', async () => {
      for await (const row of db.insertInto('readings').values({ device: 'streamed-write', value: 1 }).returning('id').stream()) void row
      const before = pool.stats.consistentReads
      await db.selectFrom('readings').select('id').where('device', '=', 'streamed-write').execute()
      assert.equal(pool.stats.consistentReads, before + 1, 'the read after the streamed write went to the primary')
    })
  })

  it('fails a stream whose replica went silent once the probes find it dead, instead of hanging', async () => {
    const proxy = await TcpFaultProxy.start({ target: { host: topology.replicas[0]!.host, port: topology.replicas[0]!.port } })
    cleanup.push(() => proxy.close())
    const { db, pool } = await database({
      cursor: Cursor, replicas: [`postgres://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable`],
      health: { probeIntervalMs: 250, probeTimeoutMs: 500 },
    })
    await write(() => db.insertInto('readings').values(Array.from({ length: 30 }, (_, i) => ({ device: 'silenced', value: i }))).execute())
    const replicated = (): Promise<boolean> =>
      db.selectFrom('readings').select('id').where('device', '=', 'silenced').execute().then((rows) => rows.length === 30, () => false)
    assert.ok(await waitUntil(replicated, 5000))
    const started = performance.now()
    const outcome = await (async () => {
      let rows = 0
      for await (const row of db.selectFrom('readings').select('id').where('device', '=', 'silenced').stream(5)) {
        void row
        // After the first chunk the network to the replica drops every byte, silently.
        if (++rows === 5) proxy.setMode('blackhole')
      }
      return `all ${rows} rows`
    })().catch((error: unknown) => error)
    assert.ok(outcome instanceof Error, `the stream ended with ${String(outcome)}`)
    assert.ok(performance.now() - started < 8000, `the stream hung ${(performance.now() - started).toFixed(0)} ms`)
    assert.equal(pool.stats.replicas[0]!.state, 'unhealthy')
  })

  it('keeps a read-only scope read-only when its read falls to the primary', async () => {
    const { db } = await database({ consistency: { mode: 'window', windowMs: 60_000 } })
    await withConsistencyKey('read-only-on-primary', async () => {
      await db.insertInto('readings').values({ device: 'before-ro', value: 1 }).execute()
      // Raw SQL only the server can tell is a write, sent to the primary because of the write just made.
      await assert.rejects(
        readOnly(() => sql`insert into readings (device, value) values ('sneaked-in', 1)`.execute(db)),
        isWriteInReadOnlyScopeError,
      )
    })
    const rows = await write(() => db.selectFrom('readings').select('id').where('device', '=', 'sneaked-in').execute())
    assert.deepEqual(rows, [])
  })

  it("prefers replicas of the message's region, then of the pool's own, then any healthy one", async () => {
    const [eu, us] = topology.replicas
    const pool = await ReplicaPool.create({
      primary: topology.primary!.url,
      replicas: [{ url: eu!.url, region: 'eu' }, { url: us!.url, region: 'us' }],
      region: 'us',
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    const readsFrom = async (region: string): Promise<Set<number>> => {
      const ctx = new MessageContext({
        topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: undefined,
        broker: 'test', route: { pattern: 't', subscription: 't', name: undefined }, container: rootContainerForTests(), publish: async () => {},
      })
      ;(ctx.state as Record<string, unknown>).geo = { region }
      const ports = new Set<number>()
      await runInMessageScope(ctx, async () => {
        for (let i = 0; i < 20; i++) ports.add((await servedBy(db)).port)
      })
      return ports
    }
    assert.deepEqual([...await readsFrom('us')], [us!.port])
    assert.deepEqual([...await readsFrom('eu')], [eu!.port])
    assert.deepEqual([...await readsFrom('ap')], [us!.port], "no replica in the message's region: the pool's own region")
    assert.deepEqual(new Set(await Promise.all(Array.from({ length: 20 }, async () => (await servedBy(db)).port))), new Set([us!.port]))
    // Neither region has a replica: any healthy one.
    const { db: elsewhere } = await database({ replicas: [{ url: eu!.url, region: 'eu' }], region: 'ap' })
    assert.equal((await servedBy(elsewhere)).port, eu!.port)
  })

  it('keeps @ReadOnly methods on replicas and refuses their writes before any database sees them', async () => {
    const { db } = await database()
    class Readings {
      @ReadOnly() where() {
        return sql<{ port: number }>`select inet_server_port() as port`.execute(db)
      }
      @ReadOnly() sneakyInsert() {
        return db.insertInto('readings').values({ device: 'sneaky', value: 0 }).execute()
      }
      @Write() save(value: number) {
        return db.insertInto('readings').values({ device: 'repo', value }).returning(sql<number>`inet_server_port()`.as('port')).executeTakeFirstOrThrow()
      }
      @ReadOnly() async callsWrite() {
        return this.save(1)
      }
    }
    const repository = new Readings()
    const raw = await repository.where()
    assert.ok(topology.replicas.some((r) => r.port === Number(raw.rows[0]!.port)), 'raw SQL in @ReadOnly goes to a replica')
    await assert.rejects(repository.sneakyInsert(), isWriteInReadOnlyScopeError)
    await assert.rejects(repository.callsWrite(), isWriteInReadOnlyScopeError)
    assert.equal(Number((await repository.save(5)).port), topology.primary!.port)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM readings WHERE device = 'sneaky'")
    await admin.end()
    assert.equal(rows[0].n, 0)
  })

  it('loses no read while a replica is SIGKILLed under 4 workers, stops using it, and takes it back after restart', async () => {
    // Round robin makes "serves reads again" visible to one sequential reader; least-latency would
    // send every sequential read to whichever replica has the lower latency average.
    const { db, pool } = await database({ strategy: 'round-robin', health: { probeIntervalMs: 250 } })
    const victim = topology.replicas[0]!
    let failures = 0
    let reads = 0
    const deadline = Date.now() + 10_000
    const worker = async (): Promise<void> => {
      while (Date.now() < deadline) {
        try {
          await servedBy(db)
          reads++
        } catch {
          failures++
        }
      }
    }
    const workers = Promise.all([worker(), worker(), worker(), worker()])
    await new Promise((resolve) => setTimeout(resolve, 2000))
    await victim.kill()
    await workers
    assert.equal(failures, 0, `${failures} of ${reads + failures} reads failed`)
    const downState = pool.stats.replicas.find((r) => r.id.endsWith(`:${victim.port}`))!
    assert.equal(downState.state, 'unhealthy')
    // The checks behind /ready and healthGate('replicas') see the outage too, not only the router.
    const checks = new Map(pool.healthChecks().map((c) => [c.name, c]))
    const counted = (await checks.get('replicas')!.check(new AbortController().signal)) as { observedValue: number }
    assert.equal(counted.observedValue, 1, 'one replica is left to read from')
    await assert.rejects(async () => checks.get(`replica/${downState.id}`)!.check(new AbortController().signal), /probes fail/)
    const servedWhileDown = new Set<number>()
    for (let i = 0; i < 20; i++) servedWhileDown.add((await servedBy(db)).port)
    assert.ok(!servedWhileDown.has(victim.port))
    await victim.restart()
    const back = await waitUntil(async () => (await servedBy(db)).port === victim.port, 15_000)
    assert.ok(back, 'the restarted replica serves reads again')
  })

  it('reads its own writes under a 300 ms apply delay, and shows the delay is real when consistency is off', async function () {
    const delayed = await startTopology({ replicas: 1, replicaApplyDelayMs: 300 })
    cleanup.push(() => delayed.stop())
    await migrateToLatest(delayed.primary!.url)
    const admin = new pg.Client({ connectionString: delayed.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE readings (id serial PRIMARY KEY, device text NOT NULL, value integer NOT NULL)')
    await admin.end()
    const staleReads = async (mode: 'lsn' | 'off', iterations: number): Promise<number> => {
      const pool = await ReplicaPool.create({ primary: delayed.primary!.url, replicas: [delayed.replicas[0]!.url], consistency: { mode } })
      const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
      let stale = 0
      try {
        for (let i = 0; i < iterations; i++) {
          await withConsistencyKey(`device-${mode}`, async () => {
            await db.updateTable('readings').set({ value: i }).where('device', '=', `ryw-${mode}`).execute()
            if (i === 0) await db.insertInto('readings').values({ device: `ryw-${mode}`, value: 0 }).execute()
            const row = await db.selectFrom('readings').select('value').where('device', '=', `ryw-${mode}`).executeTakeFirst()
            if (row?.value !== i) stale++
          })
        }
      } finally {
        await db.destroy()
      }
      return stale
    }
    assert.equal(await staleReads('lsn', 1000), 0)
    assert.ok((await staleReads('off', 50)) > 0, 'without read-your-writes the delayed replica serves stale rows')
  })

  it('lets a @ReadOnly read in the same message see a @Write made just before it', async () => {
    const { db } = await database()
    class Devices {
      @Write() save(device: string) {
        return db.insertInto('readings').values({ device, value: 7 }).execute()
      }
      @ReadOnly() find(device: string) {
        return db.selectFrom('readings').select('value').where('device', '=', device).executeTakeFirst()
      }
    }
    const repository = new Devices()
    for (let i = 0; i < 10; i++) {
      const ctx = new MessageContext({
        topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: undefined,
        broker: 'test', route: { pattern: 't', subscription: 't', name: undefined }, container: rootContainerForTests(), publish: async () => {},
      })
      await runInMessageScope(ctx, async () => {
        await repository.save(`same-message-${i}`)
        assert.equal((await repository.find(`same-message-${i}`))?.value, 7)
      })
    }
  })

  it('asks for no WAL position after writes nothing reads back, and once for the writes a read follows', async () => {
    const { db, pool } = await database()
    const asked = (): number => pool.stats.positionQuestions
    const inMessage = <T>(fn: () => Promise<T>): Promise<T> =>
      runInMessageScope(
        new MessageContext({
          topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: undefined,
          broker: 'test', route: { pattern: 't', subscription: 't', name: undefined }, container: rootContainerForTests(), publish: async () => {},
        }),
        fn,
      )
    const before = asked()
    for (let i = 0; i < 5; i++) await inMessage(() => write(() => db.insertInto('readings').values({ device: `write-only-${i}`, value: 1 }).execute()))
    assert.equal(asked(), before, 'writes nothing read back asked nothing')
    const consistent = pool.stats.consistentReads
    await inMessage(async () => {
      for (let i = 0; i < 3; i++) await write(() => db.insertInto('readings').values({ device: 'read-back', value: i }).execute())
      const rows = await readOnly(() => db.selectFrom('readings').select('value').where('device', '=', 'read-back').execute())
      assert.equal(rows.length, 3, 'the read sees all three writes')
      await readOnly(() => db.selectFrom('readings').select('value').where('device', '=', 'read-back').execute())
    })
    assert.equal(asked(), before + 1, 'one question covered the three writes and both reads')
    assert.equal(pool.stats.consistentReads, consistent + 2)
  })

  it('reports a transaction that PostgreSQL rolled back at COMMIT instead of calling it committed', async () => {
    const { db } = await database()
    await db.insertInto('readings').values({ id: 900_001, device: 'dup', value: 1 }).execute()
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('readings').values({ device: 'lost', value: 1 }).execute()
        await trx.insertInto('readings').values({ id: 900_001, device: 'dup', value: 2 } as never).execute().catch(() => undefined)
      }),
      isTransactionAbortedError,
    )
    const lost = await write(() => db.selectFrom('readings').select('id').where('device', '=', 'lost').execute())
    assert.deepEqual(lost, [])
  })

  it('gives the connection of a controlled transaction rolled back at COMMIT back to the pool', async () => {
    const { db, pool } = await database({ poolSize: 1 })
    await db.insertInto('readings').values({ id: 900_002, device: 'dup-2', value: 1 }).execute()
    const trx = await db.startTransaction().execute()
    await trx.insertInto('readings').values({ id: 900_002, device: 'dup-2', value: 2 } as never).execute().catch(() => undefined)
    await assert.rejects(trx.commit().execute(), isTransactionAbortedError)
    assert.equal(trx.isRolledBack, true)
    assert.deepEqual(pool.stats.primary.connections, { total: 1, idle: 1, waiting: 0 })
    await db.insertInto('readings').values({ device: 'after-abort', value: 1 }).execute()
  })

  it('refuses a write inside a read-only transaction with WriteInReadOnlyScopeError', async () => {
    const { db } = await database()
    await assert.rejects(
      readOnly(() => db.transaction().execute((trx) => trx.insertInto('readings').values({ device: 'ro-trx', value: 1 }).execute())),
      isWriteInReadOnlyScopeError,
    )
  })

  it('treats a COMMIT whose outcome is unknown as a write its scope must see', async () => {
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    cleanup.push(() => admin.end())
    // A deferred trigger makes COMMIT itself slow, past queryTimeoutMs.
    await admin.query(`
      CREATE TABLE IF NOT EXISTS slow_commits (id serial PRIMARY KEY);
      CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.8); RETURN NULL; END $$;
      DROP TRIGGER IF EXISTS slow_commit ON slow_commits;
      CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow_commits DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();`)
    const { db, pool } = await database({ queryTimeoutMs: 400 })
    await withConsistencyKey('unknown-commit', async () => {
      await assert.rejects(
        db.transaction().execute((trx) => sql`insert into slow_commits default values`.execute(trx)),
        isQueryTimeoutError,
      )
      const before = pool.stats.consistentReads
      await db.selectFrom('readings').select('id').limit(1).execute()
      assert.equal(pool.stats.consistentReads, before + 1, 'the read went where the unknown commit is sure to be seen')
    })
  })

  it('counts a read-only transaction as outstanding on its replica until it ends', async () => {
    const { db, pool } = await database()
    const outstanding = (): number => pool.stats.replicas.reduce((sum, replica) => sum + replica.outstanding, 0)
    let inside = -1
    await readOnly(() =>
      db.transaction().execute(async (trx) => {
        await servedBy(trx)
        inside = outstanding()
      }),
    )
    assert.equal(inside, 1)
    assert.equal(outstanding(), 0)
  })

  it('fails a read that gets no answer in queryTimeoutMs with QueryTimeoutError, and the server stops the statement too', async () => {
    const { db, pool } = await database({ queryTimeoutMs: 300, replicas: [topology.replicas[0]!.url] })
    const started = performance.now()
    await assert.rejects(readOnly(() => sql`select pg_sleep(60), 'routemq-timeout-probe' as marker`.execute(db)), isQueryTimeoutError)
    const waited = performance.now() - started
    assert.ok(waited < 1500, `the read failed after ${waited.toFixed(0)} ms`)
    // A slow query is no dead server: the replica keeps its reads, and the read was not run again elsewhere.
    assert.equal(pool.stats.replicas[0]!.state, 'healthy')
    assert.equal(pool.stats.readRetries, 0)
    assert.equal((await readOnly(() => servedBy(db))).port, topology.replicas[0]!.port)
    // The closed socket never interrupts pg_sleep on the server; statement_timeout, just above queryTimeoutMs, does.
    const admin = new pg.Client({ connectionString: topology.replicas[0]!.url })
    await admin.connect()
    cleanup.push(() => admin.end())
    const stillRunning = async (): Promise<boolean> => {
      const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%routemq-timeout-probe%' AND pid <> pg_backend_pid()")
      return rows[0].n > 0
    }
    assert.ok(await waitUntil(async () => !(await stillRunning()), 5000), 'the abandoned statement still runs on the replica')
  })

  it("merges the session options of a server's URL with its own: read-only replicas, a statement_timeout", async () => {
    // The URL's stricter statement_timeout wins over ours; its attempt to make replica sessions writable does not.
    const url = `${topology.replicas[0]!.url}&options=${encodeURIComponent('-c work_mem=7MB -c statement_timeout=5s -c default_transaction_read_only=off')}`
    const { db } = await database({ replicas: [url], queryTimeoutMs: 30_000 })
    const show = async (name: string): Promise<string> => {
      const { rows } = await readOnly(() => sql<Record<string, string>>`select current_setting(${name}) as value`.execute(db))
      return rows[0]!.value!
    }
    assert.deepEqual(
      { workMem: await show('work_mem'), readOnly: await show('default_transaction_read_only'), statementTimeout: await show('statement_timeout') },
      { workMem: '7MB', readOnly: 'on', statementTimeout: '5s' },
    )
  })

  it('lets queries in flight finish when closed, and refuses new ones with ReplicaPoolClosedError', async () => {
    const { db, pool } = await database()
    let began!: () => void
    const inTransaction = new Promise<void>((resolve) => (began = resolve))
    const transaction = db.transaction().execute(async (trx) => {
      began()
      await sql`select pg_sleep(0.3)`.execute(trx)
      return trx.insertInto('readings').values({ device: 'closing', value: 1 }).returning('device').executeTakeFirstOrThrow()
    })
    const inFlight = readOnly(() => sql<{ done: string }>`select pg_sleep(0.3), 'finished' as done`.execute(db))
    // Both hold a connection before close() starts: the transaction has begun, the read has its replica connection.
    await inTransaction
    assert.ok(await waitUntil(async () => pool.stats.replicas.some((r) => r.connections.total > r.connections.idle), 2000))
    const closing = pool.close()
    await assert.rejects(db.selectFrom('readings').selectAll().execute(), isReplicaPoolClosedError)
    assert.equal((await inFlight).rows[0]!.done, 'finished')
    assert.deepEqual(await transaction, { device: 'closing' })
    await closing
  })

  it('lets a read a replica refused as a write finish on the primary when closed meanwhile', async () => {
    const { db, pool } = await database()
    // A plain read goes to a replica, which sleeps, then refuses nextval() (read-only): the pool runs it again on the primary.
    const refused = db.selectNoFrom([sql<string>`pg_sleep(0.3)`.as('slept'), sql<string>`nextval('readings_id_seq')`.as('n')]).execute()
    assert.ok(await waitUntil(async () => pool.stats.replicas.some((r) => r.connections.total > r.connections.idle), 2000))
    const closing = pool.close()
    const rows = await refused
    assert.ok(Number(rows[0]!.n) > 0, 'the primary answered')
    await closing
  })

  it('counts only the query, not the wait for a free connection, against queryTimeoutMs', async () => {
    const { db } = await database({ queryTimeoutMs: 1000, poolSize: 1, replicas: [topology.replicas[0]!.url] })
    // Each takes 400 ms, well under the limit; the fourth waits 1.2 s for the one connection first.
    const reads = Array.from({ length: 4 }, () => readOnly(() => sql`select pg_sleep(0.4)`.execute(db)).then(() => 'ok', (e: unknown) => String(e)))
    assert.deepEqual(await Promise.all(reads), ['ok', 'ok', 'ok', 'ok'])
  })

  it('serves work queued for a connection during the grace period of close()', async () => {
    const { db, pool } = await database({ poolSize: 1, connectTimeoutMs: 5000, closeTimeoutMs: 10_000, replicas: [topology.replicas[0]!.url] })
    const first = readOnly(() => sql`select pg_sleep(1)`.execute(db))
    const queued = readOnly(() => sql<{ n: number }>`select 2 as n`.execute(db))
    assert.ok(await waitUntil(async () => pool.stats.replicas[0]!.connections.waiting === 1, 2000), 'the second read waits for the one connection')
    const started = performance.now()
    await pool.close()
    // Done as soon as the work is, not at the end of the grace period.
    assert.ok(performance.now() - started < 4000, `close() took ${(performance.now() - started).toFixed(0)} ms`)
    await first
    assert.equal((await queued).rows[0]!.n, 2)
  })

  it('closes a transaction still open when closeTimeoutMs ends, fails the work queued behind it, and close() returns', async function () {
    this.timeout(15_000)
    const { db, pool } = await database({ closeTimeoutMs: 100, poolSize: 1, connectTimeoutMs: 10_000 })
    let began!: () => void
    const inTransaction = new Promise<void>((resolve) => (began = resolve))
    let carryOn!: () => void
    const held = new Promise<void>((resolve) => (carryOn = resolve))
    const transaction = db
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('readings').values({ device: 'held-open', value: 1 }).execute()
        began()
        // Between statements, holding the connection: no query runs on it when the grace period ends.
        await held
        await trx.insertInto('readings').values({ device: 'held-open', value: 2 }).execute()
      })
      .then(() => 'committed', (error: unknown) => error)
    await inTransaction
    // A write waiting for the primary's one connection, which the transaction holds.
    const queued = db.insertInto('readings').values({ device: 'held-open', value: 3 }).execute().then(() => 'written', (error: unknown) => error)
    assert.ok(await waitUntil(async () => pool.stats.primary.connections.waiting === 1, 2000), 'the write waits for the connection')
    const started = performance.now()
    await pool.close()
    assert.ok(performance.now() - started < 3000, `close() took ${(performance.now() - started).toFixed(0)} ms`)
    const refused = await queued
    assert.ok(isReplicaPoolClosedError(refused) && refused.when === 'before-query', `the queued write ended with ${String(refused)}`)
    carryOn()
    const outcome = await transaction
    assert.ok(isReplicaPoolClosedError(outcome) && outcome.when === 'under-query', `the transaction ended with ${String(outcome)}`)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    cleanup.push(() => admin.end())
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM readings WHERE device = 'held-open'")
    assert.equal(rows[0].n, 0, 'nothing of the closed transaction was committed')
  })

  it('closes connections under queries that outlast closeTimeoutMs', async () => {
    const { db, pool } = await database({ closeTimeoutMs: 100, replicas: [topology.replicas[0]!.url] })
    const slow = readOnly(() => sql`select pg_sleep(30)`.execute(db)).then(() => 'answered', (error: unknown) => error)
    assert.ok(await waitUntil(async () => pool.stats.replicas[0]!.connections.total > pool.stats.replicas[0]!.connections.idle, 2000))
    const started = performance.now()
    await pool.close()
    assert.ok(performance.now() - started < 3000, 'close() waited for the slow query')
    const outcome = await slow
    assert.ok(isReplicaPoolClosedError(outcome) && outcome.when === 'under-query', `the read ended with ${String(outcome)}`)
  })

  it('fails writes fast with PrimaryUnavailableError while the primary is down, keeps reading, and writes again after', async () => {
    const { db } = await database({ connectTimeoutMs: 1000, health: { probeIntervalMs: 200 } })
    await topology.primary!.stop()
    try {
      const started = performance.now()
      await assert.rejects(db.insertInto('readings').values({ device: 'down', value: 1 }).execute(), isPrimaryUnavailableError)
      assert.ok(performance.now() - started < 1500)
      assert.equal((await servedBy(db)).recovery, true)
    } finally {
      await topology.primary!.restart()
    }
    const back = await waitUntil(async () => {
      try {
        await db.insertInto('readings').values({ device: 'back', value: 1 }).execute()
        return true
      } catch (error) {
        if (!isPrimaryUnavailableError(error)) throw error
        return false
      }
    }, 15_000)
    assert.ok(back)
    assert.equal((await readOnly(() => servedBy(db))).recovery, true)
  })

  it('takes one terminated connection for what it is: other writes on the primary carry on', async () => {
    const { db } = await database()
    const victim = write(() => sql`select pg_sleep(2)`.execute(db)).then(() => 'finished', (error: unknown) => error)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    try {
      assert.ok(await waitUntil(async () => {
        const { rows } = await admin.query("SELECT pid FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(2)%'")
        return rows.length === 1
      }, 5000))
      const concurrent = db.insertInto('readings').values({ device: 'bystander', value: 1 }).execute()
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep(2)%'")
      assert.ok(isPrimaryUnavailableError(await victim), 'the terminated query fails')
      await concurrent
      await db.insertInto('readings').values({ device: 'right-after', value: 1 }).execute()
    } finally {
      await admin.end()
    }
  })

  it('keeps reading from replicas past maxLagMs while the primary is down', async () => {
    const { db } = await database({ maxLagMs: 1000, health: { probeIntervalMs: 200 } })
    await topology.primary!.stop()
    try {
      await new Promise((resolve) => setTimeout(resolve, 2500))
      for (let i = 0; i < 5; i++) assert.equal((await readOnly(() => servedBy(db))).recovery, true)
    } finally {
      await topology.primary!.restart()
    }
  })
})

describe('ReplicaPool following lag and promotion', function () {
  this.timeout(90_000)
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })

  async function setApplyDelay(url: string, ms: number): Promise<void> {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    await client.query(`ALTER SYSTEM SET recovery_min_apply_delay = '${ms}ms'`)
    await client.query('SELECT pg_reload_conf()')
    await client.end()
  }

  it('gives no reads to a replica over maxLagMs and takes it back once it caught up', async () => {
    const topology = await startTopology({ replicas: 1 })
    cleanup.push(() => topology.stop())
    await migrateToLatest(topology.primary!.url)
    const pool = await ReplicaPool.create({
      primary: topology.primary!.url, replicas: [topology.replicas[0]!.url], maxLagMs: 1000, health: { probeIntervalMs: 200 },
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    assert.equal((await servedBy(db)).recovery, true)
    await setApplyDelay(topology.replicas[0]!.url, 3000)
    assert.ok(await waitUntil(async () => (pool.stats.replicas[0]!.lagMs ?? 0) > 1000, 15_000), 'the lag shows')
    assert.deepEqual(await servedBy(db), { port: topology.primary!.port, recovery: false }, 'reads fall back to the primary')
    assert.ok(pool.stats.fallbacksToPrimary > 0)
    await setApplyDelay(topology.replicas[0]!.url, 0)
    assert.ok(await waitUntil(async () => (await servedBy(db)).recovery, 15_000), 'the caught-up replica serves again')
  })

  /** A primary with one replica, and a fault proxy in front of the primary. */
  async function primaryBehindProxy(): Promise<{ primary: PostgresHandle; replica: PostgresHandle; proxy: TcpFaultProxy }> {
    const topology = await startTopology({ replicas: 1 })
    cleanup.push(() => topology.stop())
    const proxy = await TcpFaultProxy.start({ target: { host: topology.primary!.host, port: topology.primary!.port } })
    cleanup.push(() => proxy.close())
    return { primary: topology.primary!, replica: topology.replicas[0]!, proxy }
  }

  it('without the heartbeat, sees a replica cut off from the primary fall behind', async () => {
    const { primary, replica, proxy: link } = await primaryBehindProxy()
    await replica.follow({ host: '127.0.0.1', port: link.port })
    const pool = await ReplicaPool.create({
      primary: primary.url, replicas: [replica.url], heartbeatTable: false, maxLagMs: 1500, health: { probeIntervalMs: 200 },
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    await write(() => sql`create table if not exists cut_off (id serial primary key)`.execute(db))
    assert.ok(await waitUntil(async () => pool.stats.replicas[0]!.lagMs === 0, 10_000), 'the replica starts caught up')
    // The replication link drops every byte from now on; the replica has replayed all it received.
    link.setMode('blackhole')
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && !((pool.stats.replicas[0]!.lagMs ?? 0) > 1500)) {
      await write(() => sql`insert into cut_off default values`.execute(db))
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    assert.ok((pool.stats.replicas[0]!.lagMs ?? 0) > 1500, `lag reads ${pool.stats.replicas[0]!.lagMs} ms`)
    assert.deepEqual(await servedBy(db), { port: primary.port, recovery: false }, 'reads leave the cut-off replica')
  })

  it('under split brain, stays with the current primary through a missed probe, and moves after fall misses', async () => {
    const { replica: promoted, proxy } = await primaryBehindProxy()
    // Both accept writes from here on.
    await promoted.promote()
    const pool = await ReplicaPool.create({
      primary: [`postgres://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable`, promoted.url],
      health: { probeIntervalMs: 200, probeTimeoutMs: 300, fall: 4 },
    })
    cleanup.push(() => pool.close())
    assert.equal(pool.stats.primary.id, `127.0.0.1:${proxy.port}`, 'the first candidate listed is taken')
    // About one probe round (200 ms apart, 300 ms to fail) without an answer: fewer than `fall` misses.
    proxy.setMode('blackhole')
    await new Promise((resolve) => setTimeout(resolve, 400))
    proxy.setMode('pass')
    assert.equal(pool.stats.primary.id, `127.0.0.1:${proxy.port}`, 'one missed probe moved the writes')
    // A real outage: the other candidate takes over.
    proxy.setMode('blackhole')
    assert.ok(await waitUntil(async () => pool.stats.primary.id === `127.0.0.1:${promoted.port}`, 10_000), 'the other candidate takes over')
  })

  it('sends writes to a promoted replica after the primary stopped', async () => {
    const topology = await startTopology({ replicas: 2 })
    cleanup.push(() => topology.stop())
    const [oldPrimary, promoted, follower] = [topology.primary!, topology.replicas[0]!, topology.replicas[1]!]
    const admin = new pg.Client({ connectionString: oldPrimary.url })
    await admin.connect()
    await admin.query('CREATE TABLE readings (id serial PRIMARY KEY, device text NOT NULL, value integer NOT NULL)')
    await admin.end()
    const pool = await ReplicaPool.create({
      primary: [oldPrimary.url, promoted.url], replicas: [promoted.url, follower.url], health: { probeIntervalMs: 200 }, connectTimeoutMs: 1000,
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())
    const port = async (): Promise<number> =>
      Number((await db.insertInto('readings').values({ device: 'p', value: 1 }).returning(sql<number>`inet_server_port()`.as('port')).executeTakeFirstOrThrow()).port)
    assert.equal(await port(), oldPrimary.port)
    await oldPrimary.stop()
    await promoted.promote()
    await follower.follow(promoted)
    assert.ok(await waitUntil(async () => {
      try {
        return (await port()) === promoted.port
      } catch (error) {
        if (isPrimaryUnavailableError(error)) return false
        throw error
      }
    }, 15_000), 'writes reach the promoted server')
    assert.equal(pool.stats.primary.id, `127.0.0.1:${promoted.port}`)
    assert.deepEqual(await servedBy(db), { port: follower.port, recovery: true }, 'reads go to the replica still in recovery')
  })
})

describe('ReplicaPool behind a silently dropped network', function () {
  this.timeout(90_000)
  const cleanup: (() => Promise<unknown>)[] = []
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })

  it('moves reads off a blackholed replica without failing or hanging any, and writes again after a blackholed primary heals', async () => {
    const topology = await startTopology({ replicas: 2 })
    cleanup.push(() => topology.stop())
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE readings (id serial PRIMARY KEY, device text NOT NULL, value integer NOT NULL)')
    await admin.end()
    const viaProxy = async (server: { host: string; port: number }): Promise<{ proxy: TcpFaultProxy; url: string }> => {
      const proxy = await TcpFaultProxy.start({ target: { host: server.host, port: server.port } })
      cleanup.push(() => proxy.close())
      return { proxy, url: `postgres://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable` }
    }
    const replica = await viaProxy(topology.replicas[0]!)
    const primary = await viaProxy(topology.primary!)
    const pool = await ReplicaPool.create({
      primary: primary.url, replicas: [replica.url, topology.replicas[1]!.url], strategy: 'round-robin',
      health: { probeIntervalMs: 250, probeTimeoutMs: 500 }, connectTimeoutMs: 1000,
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) })
    cleanup.push(() => db.destroy())

    let failures = 0
    let slowest = 0
    const deadline = Date.now() + 5000
    const reader = async (): Promise<void> => {
      while (Date.now() < deadline) {
        const started = performance.now()
        try {
          await servedBy(db)
        } catch {
          failures++
        }
        slowest = Math.max(slowest, performance.now() - started)
      }
    }
    const readers = Promise.all([reader(), reader()])
    await new Promise((resolve) => setTimeout(resolve, 1000))
    replica.proxy.setMode('blackhole')
    await readers
    assert.equal(failures, 0)
    assert.ok(slowest < 4000, `a read waited ${slowest.toFixed(0)} ms on the blackholed replica`)

    primary.proxy.setMode('blackhole')
    const write = () => db.insertInto('readings').values({ device: 'bh', value: 1 }).execute()
    const outcome = await Promise.race([
      write().then(() => 'written', (error: unknown) => (isPrimaryUnavailableError(error) ? 'unavailable' : `other: ${String(error)}`)),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 10_000)),
    ])
    assert.equal(outcome, 'unavailable')
    primary.proxy.setMode('pass')
    assert.ok(await waitUntil(async () => write().then(() => true, () => false), 15_000), 'writes work again once the network heals')
  })
})

/** Bounded retry of a check that has no event to await (replication and probes run on their own clocks). */
async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}
