import assert from 'node:assert/strict'
import pg from 'pg'
import { createMigrationPool } from '../../plugins/kysely/migration-pool.js'
import { silentLogger, type LogFields, type Logger } from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'

const SECRET = 'migrateS3cret'

describe('The pool migrateToLatest runs the migrations on, when the server ends its connection', function () {
  this.timeout(60_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    topology = await startTopology({ brokers: 0, postgres: true })
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(async () => {
    await topology?.stop()
  })

  /** The primary's URL with a password the server ignores (trust authentication), to prove it is never logged. */
  function urlWithSecret(): string {
    const url = new URL(topology.primary!.url)
    url.password = SECRET
    return url.toString()
  }

  /** Ends a backend as an administrator (or a failover, or idle_session_timeout) would. */
  async function terminate(pid: number): Promise<void> {
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    try {
      const { rows } = await admin.query<{ ended: boolean }>('SELECT pg_terminate_backend($1) AS ended', [pid])
      assert.equal(rows[0]!.ended, true)
    } finally {
      await admin.end()
    }
  }

  async function backendPid(client: pg.PoolClient): Promise<number> {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
    return rows[0]!.pid
  }

  // With no 'error' listener, pg's emit throws from the socket's event: an uncaught exception, which mocha reports as this test failing.
  it('logs the idle connection\'s end without the password, keeps the process up, and connects afresh', async () => {
    const warnings: { message: string; fields?: LogFields }[] = []
    let onWarning!: () => void
    const warned = new Promise<void>((resolve) => (onWarning = resolve))
    const logger: Logger = { ...silentLogger, warn: (message, fields) => (warnings.push({ message, fields }), onWarning()) }
    const pool = createMigrationPool(urlWithSecret(), logger)
    cleanup.push(() => pool.end())
    const client = await pool.connect()
    const pid = await backendPid(client)
    client.release()

    await terminate(pid)
    await warned
    const text = JSON.stringify(warnings)
    assert.match(text, /terminating connection/)
    assert.match(text, /127\.0\.0\.1/, 'names the server')
    assert.ok(!text.includes(SECRET), `no password in ${text}`)
    const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one')
    assert.equal(rows[0]!.one, 1, 'the pool connects afresh')
  })

  it('keeps the process up when the server ends a connection checked out between two queries, and fails the next query', async () => {
    const pool = createMigrationPool(urlWithSecret(), silentLogger)
    cleanup.push(() => pool.end())
    const client = await pool.connect()
    const pid = await backendPid(client)
    const ended = new Promise((resolve) => client.once('end', resolve))

    await terminate(pid)
    await ended
    await assert.rejects(client.query('SELECT 1'), /not queryable|terminat/)
    client.release(true)
  })
})
