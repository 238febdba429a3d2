import assert from 'node:assert/strict'
import { Kysely, PostgresDialect, sql } from 'kysely'
import pg from 'pg'
import { InvalidOptionError } from '../../src/index.js'
import { serverStatementTimeoutMs, withSessionSettings } from '../../plugins/kysely/pg-backend.js'
import { isWriteInReadOnlyScopeError, readOnly, ReadOnly, resolveReplicaPoolOptions, write, Write, currentScope, type ReplicaPoolOptions } from '../../plugins/kysely/index.js'
import { parseLsn } from '../../plugins/kysely/lsn.js'
import { queryKind } from '../../plugins/kysely/query-kind.js'
import { isConnectionError, isRetryableReadFailure, isSessionOnlyError } from '../../plugins/kysely/connection-errors.js'

interface Database {
  t: { id: number; v: string }
}

// Only compiles queries: the pool is never connected.
const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ max: 1 }) }) })

describe('query classification for routing', () => {
  const cases: [string, () => { query: Parameters<typeof queryKind>[0] }, string][] = [
    ['a select', () => db.selectFrom('t').selectAll().compile(), 'read'],
    ['a select without from', () => db.selectNoFrom(sql<number>`1`.as('one')).compile(), 'read'],
    ['a select for update', () => db.selectFrom('t').selectAll().forUpdate().compile(), 'write'],
    ['a select for share', () => db.selectFrom('t').selectAll().forShare().compile(), 'write'],
    ['a select over a writing CTE', () => db.with('x', (q) => q.deleteFrom('t').returningAll()).selectFrom('x').selectAll().compile(), 'write'],
    ['an insert', () => db.insertInto('t').values({ id: 1, v: 'a' }).compile(), 'write'],
    ['an update', () => db.updateTable('t').set({ v: 'b' }).compile(), 'write'],
    ['a delete', () => db.deleteFrom('t').compile(), 'write'],
    ['DDL', () => db.schema.createTable('u').addColumn('id', 'integer').compile(), 'write'],
    ['raw SQL', () => sql`select 1`.compile(db), 'raw'],
  ]
  for (const [name, compile, kind] of cases) {
    it(`routes ${name} as ${kind}`, () => assert.equal(queryKind(compile().query), kind))
  }
  after(() => db.destroy())
})

describe('routing scopes', () => {
  it('nests: a write scope wins over an inner read-only one; a write inside read-only is refused', () => {
    assert.equal(currentScope(), undefined)
    write(() => readOnly(() => assert.equal(currentScope()?.mode, 'write')))
    readOnly(() => {
      assert.equal(currentScope()?.mode, 'read-only')
      assert.throws(() => write(() => undefined), isWriteInReadOnlyScopeError)
    })
  })

  it('carries the scope across awaits', async () => {
    await readOnly(async () => {
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(currentScope()?.mode, 'read-only')
    })
  })

  class Repository {
    @Write() async save(): Promise<string | undefined> {
      return currentScope()?.mode
    }
    @Write() saveNow(): string | undefined {
      return currentScope()?.mode
    }
    @ReadOnly() async *rows(): AsyncGenerator<string | undefined> {
      yield currentScope()?.mode
      await new Promise((resolve) => setImmediate(resolve))
      yield currentScope()?.mode
    }
  }

  it('refuses an async @Write method in a read-only scope with a rejection, a plain one with a throw', async () => {
    const repository = new Repository()
    assert.equal(await repository.save(), 'write')
    const pending = readOnly(() => repository.save())
    assert.ok(pending instanceof Promise)
    await assert.rejects(pending, isWriteInReadOnlyScopeError)
    assert.throws(() => readOnly(() => repository.saveNow()), isWriteInReadOnlyScopeError)
  })

  it("runs a decorated method's stream in its scope while the caller iterates outside it", async () => {
    const seen: (string | undefined)[] = []
    for await (const mode of new Repository().rows()) {
      assert.equal(currentScope(), undefined)
      seen.push(mode)
    }
    assert.deepEqual(seen, ['read-only', 'read-only'])
  })
})

describe('WAL positions', () => {
  it('parses and orders pg_lsn text', () => {
    assert.equal(parseLsn('0/0'), 0n)
    assert.equal(parseLsn('0/16B3748'), 0x16b3748n)
    assert.equal(parseLsn('1/0'), 1n << 32n)
    assert.ok(parseLsn('1/0')! > parseLsn('0/FFFFFFFF')!)
    assert.equal(parseLsn(null), undefined)
    assert.equal(parseLsn('garbage'), undefined)
  })
})

describe('connection errors', () => {
  it('tells a lost server from a bad query', () => {
    assert.equal(isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5'), { code: 'ECONNREFUSED' })), true)
    assert.equal(isConnectionError(new Error('Connection terminated unexpectedly')), true)
    assert.equal(isConnectionError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })), true)
    assert.equal(isConnectionError(Object.assign(new Error('could not connect'), { code: '08006' })), true)
    assert.equal(isConnectionError(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })), false)
    assert.equal(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' })), false)
    assert.equal(isConnectionError(Object.assign(new Error('connect ENETUNREACH'), { code: 'ENETUNREACH' })), true)
    assert.equal(isConnectionError(new Error('Client was closed and is not queryable')), true)
  })

  it('tells which failures say nothing of the server as a whole', () => {
    const terminated = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })
    assert.equal(isSessionOnlyError(terminated), true)
    assert.equal(isSessionOnlyError(Object.assign(new Error('the database system is shutting down'), { code: '57P03' })), false)
    assert.equal(isRetryableReadFailure(Object.assign(new Error('canceling statement due to conflict with recovery'), { code: '40001' })), true)
    assert.equal(isRetryableReadFailure(Object.assign(new Error('sorry, too many clients already'), { code: '53300' })), true)
    assert.equal(isRetryableReadFailure(Object.assign(new Error('division by zero'), { code: '22012' })), false)
  })
})

describe('replica pool options', () => {
  it('fills in defaults', () => {
    const resolved = resolveReplicaPoolOptions({ primary: 'postgres://app:pw@db-1:5432/app', replicas: ['postgres://app@db-2/app'] })
    assert.equal(resolved.primaries[0]!.id, 'db-1:5432')
    assert.equal(resolved.replicas[0]!.id, 'db-2:5432')
    assert.equal(resolved.consistency.mode, 'lsn')
    assert.equal(resolved.fallbackToPrimary, true)
    assert.equal(resolved.heartbeatTable, 'routemq_replication_heartbeat')
    assert.equal(resolved.queryTimeoutMs, 30_000)
    assert.equal(resolved.closeTimeoutMs, 5000)
  })

  const cases: [string, ReplicaPoolOptions, string][] = [
    ['no primary', { primary: [] }, 'primary'],
    ['a primary that is not a URL', { primary: 'db-1:5432' }, 'primary.url'],
    ['a mysql URL', { primary: 'mysql://db-1' }, 'primary.url'],
    ['a bad replica among candidates', { primary: ['postgres://a/x', 'nope'] }, 'primary[1].url'],
    ['a bad replica', { primary: 'postgres://a/x', replicas: ['postgres://b/x', 'http://c'] }, 'replicas[1].url'],
    ['a replica listed twice', { primary: 'postgres://a:5432/x', replicas: ['postgres://b:5432/y', 'postgres://b:5432/z'] }, 'replicas[1].id'],
    ['an unknown strategy', { primary: 'postgres://a/x', strategy: 'fastest' as never }, 'strategy'],
    ['an unknown consistency mode', { primary: 'postgres://a/x', consistency: { mode: 'strong' as never } }, 'consistency.mode'],
    ['a negative lag limit', { primary: 'postgres://a/x', maxLagMs: -1 }, 'maxLagMs'],
    ['a fractional close timeout', { primary: 'postgres://a/x', closeTimeoutMs: 1.5 }, 'closeTimeoutMs'],
    ['a cursor that is not a class', { primary: 'postgres://a/x', cursor: 'pg-cursor' as never }, 'cursor'],
    ['a close timeout no timer can wait', { primary: 'postgres://a/x', closeTimeoutMs: 2 ** 31 }, 'closeTimeoutMs'],
    ['a query timeout PostgreSQL cannot take', { primary: 'postgres://a/x', queryTimeoutMs: 2 ** 31 }, 'queryTimeoutMs'],
    ['a connect timeout no timer can wait', { primary: 'postgres://a/x', connectTimeoutMs: 2 ** 31 }, 'connectTimeoutMs'],
    ['a heartbeat table with SQL in it', { primary: 'postgres://a/x', heartbeatTable: 'x; drop table y' }, 'heartbeatTable'],
    ['a password with an unescaped "/"', { primary: 'postgres://app:12/pw@db-1:5432/app' }, 'primary.url'],
    ['a replica password with an unescaped "?"', { primary: 'postgres://a/x', replicas: ['postgres://app:12?pw@db-2/app'] }, 'replicas[0].url'],
    ['a replica password with an unescaped "#"', { primary: 'postgres://a/x', replicas: ['postgres://app:12#pw@db-2/app'] }, 'replicas[0].url'],
  ]
  for (const [name, options, field] of cases) {
    it(`rejects ${name}, naming "${field}"`, () => {
      assert.throws(() => resolveReplicaPoolOptions(options), (e: unknown) => e instanceof InvalidOptionError && e.field === field && !e.message.includes('pw'))
    })
  }

  it('says to percent-encode a password that has an unescaped "/", and keeps query values with an "@"', () => {
    assert.throws(() => resolveReplicaPoolOptions({ primary: 'postgres://app:12/pw@db-1:5432/app' }), /percent-encode/)
    // Azure Database for PostgreSQL names users user@server; in a query value that "@" is no user info.
    assert.equal(resolveReplicaPoolOptions({ primary: 'postgres://db-1:5432/app?user=app@db-1&sslmode=require' }).primaries[0]!.id, 'db-1:5432')
  })
})

describe('session settings sent at connect', () => {
  const settings = { defaults: ['statement_timeout=32000'], enforced: ['default_transaction_read_only=on'] }

  it('sends ours alone when the URL has none', () => {
    assert.deepEqual(withSessionSettings('postgres://app@db-1:5432/app?sslmode=disable', settings), {
      connectionString: 'postgres://app@db-1:5432/app?sslmode=disable',
      options: '-c statement_timeout=32000 -c default_transaction_read_only=on',
    })
  })

  it("puts the URL's own between our defaults and what must hold, and takes them out of the URL", () => {
    const url = `postgres://app:pw@db-1:5432/app?options=${encodeURIComponent('-c statement_timeout=5s -c default_transaction_read_only=off')}&sslmode=disable`
    assert.deepEqual(withSessionSettings(url, settings), {
      connectionString: 'postgres://app:pw@db-1:5432/app?sslmode=disable',
      options: '-c statement_timeout=32000 -c statement_timeout=5s -c default_transaction_read_only=off -c default_transaction_read_only=on',
    })
  })

  it('leaves a URL alone when there is nothing to add', () => {
    assert.deepEqual(withSessionSettings('postgres://app@db-1/app', { defaults: [], enforced: [] }), { connectionString: 'postgres://app@db-1/app' })
  })

  it('sets statement_timeout past the sweep that enforces queryTimeoutMs', () => {
    assert.equal(serverStatementTimeoutMs(30_000), 32_000)
    assert.equal(serverStatementTimeoutMs(300), 1375)
  })
})
