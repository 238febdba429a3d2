import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import {
  MissingBinaryError,
  startTopology,
  TopologyError,
  type BrokerHandle,
  type Topology,
} from '../../src/testing/index.js'

const REPLICATION_WAIT_MS = 10_000

async function query<Row extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<Row>(text, values)).rows
  } finally {
    await client.end()
  }
}

async function inRecovery(url: string): Promise<boolean> {
  const [row] = await query<{ recovering: boolean }>(url, 'SELECT pg_is_in_recovery() AS recovering')
  return row!.recovering
}

// Replication offers no client-side event, so this is a bounded poll of the
// replica until it has replayed everything the primary had inserted. The
// insert position, not pg_current_wal_lsn(): with synchronous_commit off a
// commit can still sit in the WAL buffers, behind the write position.
async function waitForReplay(primaryUrl: string, replicaUrl: string): Promise<void> {
  const [{ lsn } = { lsn: '' }] = await query<{ lsn: string }>(primaryUrl, 'SELECT pg_current_wal_insert_lsn()::text AS lsn')
  const client = new pg.Client({ connectionString: replicaUrl })
  await client.connect()
  try {
    const deadline = Date.now() + REPLICATION_WAIT_MS
    for (;;) {
      const { rows } = await client.query<{ caught_up: boolean | null }>(
        'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up',
        [lsn],
      )
      if (rows[0]?.caught_up === true) {
        return
      }
      assert.ok(Date.now() < deadline, `the replica did not replay up to ${lsn} within ${REPLICATION_WAIT_MS} ms`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  } finally {
    await client.end()
  }
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'))
  })
}

async function roundTrip(broker: BrokerHandle, url = broker.url): Promise<string> {
  const client: MqttClient = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000 })
  try {
    const received = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(payload.toString())))
    await client.subscribeAsync('topology/test', { qos: 1 })
    await client.publishAsync('topology/test', `hello from ${broker.name}`, { qos: 1 })
    return await received
  } finally {
    await client.endAsync()
  }
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
  }
}

describe('local topology', function () {
  this.timeout(60_000)
  let topology: Topology

  before(async () => {
    topology = await startTopology({ brokers: 2, replicas: 1, replicaApplyDelayMs: 250, websockets: true })
  })

  after(() => topology?.stop())

  it('starts a primary and a streaming replica that replays its writes', async () => {
    const primary = topology.primary!
    const [replica] = topology.replicas
    assert.equal(primary.role, 'primary')
    assert.equal(replica!.role, 'replica')
    assert.equal(await inRecovery(primary.url), false)
    assert.equal(await inRecovery(replica!.url), true)

    await query(primary.url, 'CREATE TABLE topology_probe (id int PRIMARY KEY, note text)')
    await query(primary.url, 'INSERT INTO topology_probe VALUES ($1, $2)', [1, 'replicated'])
    await waitForReplay(primary.url, replica!.url)

    const rows = await query<{ note: string }>(replica!.url, 'SELECT note FROM topology_probe WHERE id = 1')
    assert.deepEqual(rows, [{ note: 'replicated' }])
  })

  it('applies replicaApplyDelayMs as recovery_min_apply_delay', async () => {
    const [row] = await query<{ recovery_min_apply_delay: string }>(
      topology.replicas[0]!.url,
      'SHOW recovery_min_apply_delay',
    )
    assert.equal(row!.recovery_min_apply_delay, '250ms')
  })

  it('runs brokers that route MQTT messages, crash on kill() and come back on the same port', async () => {
    assert.equal(topology.brokers.length, 2)
    const [broker] = topology.brokers
    assert.match(broker!.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(await roundTrip(broker!), 'hello from broker-1')

    const port = broker!.port
    const killedPid = broker!.pid!
    await broker!.kill()
    assert.equal(broker!.running, false)
    assert.ok(isGone(killedPid))
    assert.equal(await connectionRefused(port), true)

    await broker!.restart()
    assert.equal(broker!.running, true)
    assert.equal(broker!.port, port)
    assert.notEqual(broker!.pid, killedPid)
    assert.equal(await roundTrip(broker!), 'hello from broker-1')
  })

  it('gives every broker a websocket listener when asked', async () => {
    const broker = topology.brokers[1]!
    assert.match(broker.wsUrl ?? '', /^ws:\/\/127\.0\.0\.1:\d+$/)
    assert.equal(await roundTrip(broker, broker.wsUrl), 'hello from broker-2')
  })
})

describe('local topology failover', function () {
  this.timeout(60_000)
  let topology: Topology

  before(async () => {
    topology = await startTopology({ brokers: 0, replicas: 1 })
  })

  after(() => topology?.stop())

  it('restarts a killed primary with crash recovery and the replica follows it again', async () => {
    const primary = topology.primary!
    const replica = topology.replicas[0]!
    await query(primary.url, 'CREATE TABLE crash_probe (id int PRIMARY KEY)')
    // The topology turns synchronous_commit off for speed; this row must be
    // in the WAL on disk before the crash to survive it.
    await query(primary.url, 'SET synchronous_commit = on; INSERT INTO crash_probe VALUES (1)')

    await primary.kill()
    assert.equal(primary.running, false)
    await primary.restart()

    assert.deepEqual(await query(primary.url, 'SELECT id FROM crash_probe'), [{ id: 1 }])
    await query(primary.url, 'INSERT INTO crash_probe VALUES (2)')
    await waitForReplay(primary.url, replica.url)
    assert.deepEqual(await query(replica.url, 'SELECT id FROM crash_probe ORDER BY id'), [{ id: 1 }, { id: 2 }])
  })

  it('promotes the replica after the primary crashed', async () => {
    const replica = topology.replicas[0]!
    await topology.primary!.kill()
    await replica.promote()
    assert.equal(replica.role, 'primary')
    assert.equal(await inRecovery(replica.url), false)
    await query(replica.url, 'INSERT INTO crash_probe VALUES (3)')
    await assert.rejects(topology.primary!.promote(), /already a primary/)
  })
})

describe('local topology shutdown', function () {
  this.timeout(60_000)
  let topology: Topology | undefined

  after(() => topology?.stop())

  it('stop() ends every process, removes the directory and is idempotent', async () => {
    const exitListeners = process.listenerCount('exit')
    topology = await startTopology({ brokers: 1, replicas: 1 })
    assert.equal(process.listenerCount('exit'), exitListeners + 1)
    const serverPids = await Promise.all(
      [topology.primary!, ...topology.replicas].map(async (server) => {
        const rows = await query<{ pid: number }>(
          server.url,
          `SELECT pid FROM pg_stat_activity WHERE backend_type NOT IN ('client backend', 'autovacuum worker')`,
        )
        return rows.map((row) => row.pid)
      }),
    )
    const pids = [
      ...topology.brokers.map((broker) => broker.pid!),
      topology.primary!.pid!,
      ...topology.replicas.map((replica) => replica.pid!),
      ...serverPids.flat(),
    ]
    assert.ok(pids.every((pid) => !isGone(pid)))
    assert.ok(existsSync(topology.directory))

    const first = topology.stop()
    assert.equal(topology.stop(), first)
    await first
    await topology.stop()

    assert.equal(existsSync(topology.directory), false)
    assert.deepEqual(
      pids.filter((pid) => !isGone(pid)),
      [],
    )
    assert.equal(process.listenerCount('exit'), exitListeners)
    assert.equal(topology.brokers[0]!.running, false)
    assert.equal(topology.primary!.running, false)
  })
})

describe('local topology binaries', () => {
  let emptyDirectory: string

  before(async () => {
    emptyDirectory = await mkdtemp(join(tmpdir(), 'rmq-empty-'))
  })

  after(() => rm(emptyDirectory, { recursive: true, force: true }))

  it('reports a missing mosquitto with a MissingBinaryError naming the package', async () => {
    const error = await startTopology({ brokers: 1, binaries: { searchPath: [emptyDirectory] } }).then(
      () => assert.fail('startTopology should have failed'),
      (failure: unknown) => failure,
    )
    assert.ok(error instanceof MissingBinaryError)
    assert.equal(error.code, 'MISSING_BINARY')
    assert.equal(error.binary, 'mosquitto')
    assert.match(error.message, /apt-get install mosquitto/)
  })

  it('reports missing PostgreSQL binaries with a MissingBinaryError naming the package', async () => {
    await assert.rejects(
      startTopology({ brokers: 0, postgres: true, binaries: { searchPath: [emptyDirectory] } }),
      (error: unknown) =>
        error instanceof MissingBinaryError && error.binary === 'postgres' && /apt-get install postgresql-15/.test(error.message),
    )
  })
})

describe('local topology start failures', function () {
  this.timeout(60_000)

  it('rejects with a TopologyError quoting the log and stops what had started', async () => {
    const exitListeners = process.listenerCount('exit')
    const error = await startTopology({ brokers: 2, postgres: true, brokerConfig: 'no_such_option true' }).then(
      () => assert.fail('startTopology should have failed'),
      (failure: unknown) => failure,
    )
    assert.ok(error instanceof TopologyError)
    assert.equal(error.code, 'TOPOLOGY_FAILED')
    assert.match(error.message, /broker-\d exited with code \d+ before it was ready/)
    assert.match(error.message, /Unknown configuration variable "no_such_option"/)
    const directory = /(\S+)\/broker-\d\/mosquitto\.log/.exec(error.message)?.[1]
    assert.ok(directory !== undefined && !existsSync(directory), `${directory} should have been removed`)
    assert.equal(process.listenerCount('exit'), exitListeners)
  })

  it('rejects inconsistent options before starting anything', async () => {
    await assert.rejects(startTopology({ replicas: 1, postgres: false }), TopologyError)
    await assert.rejects(startTopology({ brokers: 0, replicas: 2, replicaApplyDelayMs: [100] }), TopologyError)
    await assert.rejects(startTopology({ brokers: -1 }), TopologyError)
  })
})
