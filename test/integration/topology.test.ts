import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { connect as connectMqtt, connectAsync, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt'
import pg from 'pg'
import {
  MissingBinaryError,
  startTopology,
  TopologyError,
  type BrokerHandle,
  type PostgresHandle,
  type Topology,
} from '../../src/testing/index.js'

const REPLICATION_WAIT_MS = 10_000
// Processes of a node process that was killed outright get no exit hook;
// their parent-death signal ends them within moments.
const ORPHAN_EXIT_WAIT_MS = 5_000
const TESTING_INDEX = new URL('../../src/testing/index.js', import.meta.url).href

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

// A process whose parent died is reaped by init; until then, or for good
// under a container init that never reaps, it lingers as a zombie, which has
// ended all the same.
function hasExited(pid: number): boolean {
  if (isGone(pid)) {
    return true
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

// For states that announce themselves with no event: a foreign process's
// exit, a backend's state. Bounded, and short between looks.
async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

const PERSISTENT_SESSION: IClientOptions = {
  protocolVersion: 5,
  clean: false,
  clientId: 'persistent-1',
  properties: { sessionExpiryInterval: 300 },
  reconnectPeriod: 0,
  connectTimeout: 5_000,
}

// A persistent session subscribed QoS 1 to `topic` goes offline, and
// another client publishes `count` QoS 1 messages for it.
async function queueForOfflineSession(broker: BrokerHandle, topic: string, count: number): Promise<void> {
  const session = await connectAsync(broker.url, PERSISTENT_SESSION)
  await session.subscribeAsync(topic, { qos: 1 })
  await session.endAsync()
  const publisher = await connectAsync(broker.url, { clientId: 'publisher-1', reconnectPeriod: 0, connectTimeout: 5_000 })
  try {
    for (let i = 1; i <= count; i++) {
      await publisher.publishAsync(topic, `queued ${i}`, { qos: 1 })
    }
  } finally {
    await publisher.endAsync()
  }
}

// Resumes the persistent session and collects what arrives on `topic` before
// a marker it publishes itself once connected: the broker sends a resumed
// session's queued messages first, so whatever was queued has arrived by then.
async function resumeSession(broker: BrokerHandle, topic: string): Promise<{ sessionPresent: boolean; messages: string[] }> {
  const client = connectMqtt(broker.url, PERSISTENT_SESSION)
  const marker = `marker ${process.hrtime.bigint()}`
  const messages: string[] = []
  const markerArrived = new Promise<void>((resolve) =>
    client.on('message', (_topic, payload) => (payload.toString() === marker ? resolve() : messages.push(payload.toString()))),
  )
  try {
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    })
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, marker, { qos: 1 })
    await markerArrived
    return { sessionPresent: connack.sessionPresent, messages }
  } finally {
    await client.endAsync(true)
  }
}

async function withEnvironment<T>(name: string, value: string, body: () => Promise<T>): Promise<T> {
  const previous = process.env[name]
  process.env[name] = value
  try {
    return await body()
  } finally {
    if (previous === undefined) {
      delete process.env[name]
    } else {
      process.env[name] = previous
    }
  }
}

// A separate node process that starts a topology from the built package,
// reports its directory and servers' pids as one JSON line, and then runs
// until the topology stops. RMQ_SIGNAL_HANDLER says
// when the application registers its own graceful SIGTERM handler: 'before'
// or 'after' startTopology, or not at all.
const CHILD_TOPOLOGY_SCRIPT = `
import { existsSync } from 'node:fs'
import { connect } from 'node:net'
import { startTopology } from ${JSON.stringify(TESTING_INDEX)}

const reachable = (port) => new Promise((resolve) => {
  const socket = connect({ host: '127.0.0.1', port })
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})
let topology
const gracefulStop = async () => {
  const seen = { directoryExisted: existsSync(topology.directory), brokerReachable: await reachable(topology.brokers[0].port) }
  await topology.stop()
  console.log(JSON.stringify({ drained: seen }))
}
const handler = process.env.RMQ_SIGNAL_HANDLER
if (handler === 'before') process.once('SIGTERM', gracefulStop)
topology = await startTopology(JSON.parse(process.env.RMQ_TOPOLOGY))
if (handler === 'after') process.once('SIGTERM', gracefulStop)
const servers = [...topology.brokers, ...(topology.primary === undefined ? [] : [topology.primary])]
console.log(JSON.stringify({ directory: topology.directory, pids: servers.map((server) => server.pid) }))
`

interface ChildTopology {
  readonly directory: string
  readonly pids: readonly number[]
  signal(signal: NodeJS.Signals): void
  /** Settles once the child has exited and its output is read. */
  readonly closed: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly lines: string[] }>
}

async function startChildTopology(options: object, signalHandler: 'before' | 'after' | 'none'): Promise<ChildTopology> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_TOPOLOGY_SCRIPT], {
    env: { ...process.env, RMQ_TOPOLOGY: JSON.stringify(options), RMQ_SIGNAL_HANDLER: signalHandler },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const reader = createInterface({ input: child.stdout })
  const firstLine = new Promise<string>((resolve) => reader.once('line', resolve))
  reader.on('line', (line) => lines.push(line))
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[] }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, lines })),
  )
  const report = await Promise.race([
    firstLine,
    closed.then(({ code, signal }) => assert.fail(`the child exited (${code ?? signal}) before reporting its topology:\n${stderr}`)),
  ])
  const { directory, pids } = JSON.parse(report) as { directory: string; pids: number[] }
  return { directory, pids, signal: (signal) => child.kill(signal), closed }
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
    assert.equal(primary.url, `postgres://postgres@127.0.0.1:${primary.port}/postgres?sslmode=disable`)
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

  it('kill() crashes the whole server, so a running query fails instead of completing', async () => {
    const primary = topology.primary!
    const client = new pg.Client({ connectionString: primary.url })
    client.on('error', () => undefined)
    await client.connect()
    const [{ pid: backend } = { pid: 0 }] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows
    // A PL/pgSQL loop never checks whether its postmaster still lives; only
    // killing the backend itself stops it.
    const outcome = client.query('DO $$ BEGIN FOR i IN 1..2000000000 LOOP END LOOP; END $$').then(
      () => 'completed',
      (error: Error) => error,
    )
    await waitUntil(
      async () => (await query(primary.url, "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [backend])).length === 1,
      'the loop should be running',
      REPLICATION_WAIT_MS,
    )

    await primary.kill()

    const result = await outcome
    await client.end().catch(() => undefined)
    assert.ok(result instanceof Error, 'the query completed although its server was killed')
    assert.match(result.message, /Connection terminated|ECONNRESET/)
    // The socket is reset as the backend starts to exit; on a busy machine its exit may take a moment longer to finish.
    await waitUntil(() => hasExited(backend), `backend ${backend} exiting after kill()`, 2_000)
    await primary.restart()
    assert.deepEqual(await query(primary.url, 'SELECT count(*)::int AS n FROM crash_probe'), [{ n: 2 }])
  })

  it('promotes the replica after the primary crashed, and topology.primary moves to it', async () => {
    const replica = topology.replicas[0]!
    const crashed = topology.primary!
    await crashed.kill()
    assert.equal(topology.primary, crashed, 'a crashed primary stays the current one until another is promoted')
    await replica.promote()
    assert.equal(replica.role, 'primary')
    assert.equal(topology.primary, replica)
    assert.equal(crashed.role, 'primary')
    assert.equal(await inRecovery(replica.url), false)
    await query(replica.url, 'INSERT INTO crash_probe VALUES (3)')
    await assert.rejects(topology.primary.promote(), /already a primary/)
    await assert.rejects(replica.follow(crashed), /is a primary; follow\(\) only applies to replicas/)
  })
})

describe('local topology with three replicas', function () {
  this.timeout(60_000)
  let topology: Topology

  before(async () => {
    topology = await startTopology({ brokers: 0, replicas: 3 })
  })

  after(() => topology?.stop())

  it('clones three replicas in parallel, each of which replays the primary\'s writes', async () => {
    const primary = topology.primary!
    assert.equal(topology.replicas.length, 3)
    await query(primary.url, 'CREATE TABLE clone_probe (id int PRIMARY KEY)')
    await query(primary.url, 'INSERT INTO clone_probe VALUES (1)')
    await Promise.all(topology.replicas.map((replica) => waitForReplay(primary.url, replica.url)))
    for (const replica of topology.replicas) {
      assert.deepEqual(await query(replica.url, 'SELECT id FROM clone_probe'), [{ id: 1 }], replica.name)
    }
  })

  it('lets a replica follow a promoted one and replay its writes, whatever PGSSLMODE says', async () => {
    const [promoted, follower, idle] = topology.replicas as [PostgresHandle, PostgresHandle, PostgresHandle]
    const old = topology.primary!
    // A clean stop sends every replica all of the old timeline, so none has
    // WAL beyond the point where the promoted server's timeline forks.
    await old.stop()
    assert.equal(topology.primary, old, 'a stopped primary stays the current one until another is promoted')
    await withEnvironment('PGSSLMODE', 'require', async () => {
      await promoted.promote()
      assert.equal(topology.primary, promoted)
      await follower.follow(topology.primary)

      await query(promoted.url, 'INSERT INTO clone_probe VALUES (2)')
      await waitForReplay(promoted.url, follower.url)
      assert.deepEqual(await query(follower.url, 'SELECT id FROM clone_probe ORDER BY id'), [{ id: 1 }, { id: 2 }])
      assert.equal(await inRecovery(follower.url), true)
    })
    assert.deepEqual(await query(idle.url, 'SELECT id FROM clone_probe ORDER BY id'), [{ id: 1 }])
    assert.equal(old.running, false)
    assert.equal(old.role, 'primary')
  })
})

describe('local topology lifecycle', function () {
  this.timeout(60_000)

  it('runs concurrent restart() and kill() calls of one server one after another, in call order', async () => {
    const topology = await startTopology({ brokers: 1 })
    try {
      const broker = topology.brokers[0]!
      const original = broker.pid!
      let afterFirst = 0
      await Promise.all([broker.restart().then(() => (afterFirst = broker.pid!)), broker.restart()])
      assert.equal(broker.running, true)
      assert.notEqual(afterFirst, original)
      assert.notEqual(broker.pid, afterFirst)
      assert.ok(isGone(original) && isGone(afterFirst), 'each restart should have stopped the process before it')
      assert.equal(await roundTrip(broker), 'hello from broker-1')

      await Promise.all([broker.restart(), broker.kill()])
      assert.equal(broker.running, false)
      assert.equal(await connectionRefused(broker.port), true)
    } finally {
      await topology.stop()
    }
  })

  it('stop() during restart() leaves no process behind: the restart rejects instead of starting one', async () => {
    const topology = await startTopology({ brokers: 1, postgres: true })
    const servers = [topology.brokers[0]!, topology.primary!]
    const pids = servers.map((server) => server.pid!)

    const restarts = servers.map((server) => server.restart())
    await topology.stop()
    const results = await Promise.allSettled(restarts)

    for (const result of results) {
      assert.equal(result.status, 'rejected')
      assert.ok(result.reason instanceof TopologyError)
      assert.match(result.reason.message, /this topology was stopped/)
    }
    assert.deepEqual(
      servers.map((server) => server.pid),
      pids,
      'no new process should have been started',
    )
    assert.deepEqual(
      pids.filter((pid) => !isGone(pid)),
      [],
    )
    assert.equal(servers.some((server) => server.running), false)
    assert.equal(existsSync(topology.directory), false)
  })

  it('refuses to restart a server of a stopped topology that kept its directory', async () => {
    const topology = await startTopology({ brokers: 1, keepDirectory: true })
    try {
      await topology.stop()
      assert.ok(existsSync(topology.directory))
      await assert.rejects(topology.brokers[0]!.restart(), (error: unknown) => error instanceof TopologyError && /this topology was stopped/.test(error.message))
      assert.equal(topology.brokers[0]!.running, false)
    } finally {
      await rm(topology.directory, { recursive: true, force: true })
    }
  })
})

describe('local topology broker persistence', function () {
  this.timeout(60_000)
  const queued = ['queued 1', 'queued 2', 'queued 3', 'queued 4', 'queued 5']

  for (const persistence of [true, false]) {
    it(`${persistence ? 'keeps' : 'loses'} a persistent session and its queued messages across restart() with brokerPersistence ${persistence}`, async () => {
      const topology = await startTopology({ brokers: 1, brokerPersistence: persistence })
      try {
        const broker = topology.brokers[0]!
        await queueForOfflineSession(broker, 'persistence/test', queued.length)
        await broker.restart()
        assert.deepEqual(
          await resumeSession(broker, 'persistence/test'),
          persistence ? { sessionPresent: true, messages: queued } : { sessionPresent: false, messages: [] },
        )
      } finally {
        await topology.stop()
      }
    })
  }

  it('keeps the data directory across kill() and restart(), with what the last autosave wrote', async () => {
    const topology = await startTopology({ brokers: 1, brokerPersistence: { autosaveIntervalSeconds: 1 } })
    try {
      const broker = topology.brokers[0]!
      const data = join(broker.directory, 'data')
      const configuration = readFileSync(join(broker.directory, 'mosquitto.conf'), 'utf8')
      assert.match(configuration, new RegExp(`^persistence true\npersistence_location ${data}/\nautosave_interval 1$`, 'm'))
      await queueForOfflineSession(broker, 'persistence/crash', queued.length)
      // Mosquitto logs each save as it starts it, and saves one at a time: a
      // SIGKILL keeps what a save begun after the publisher had its PUBACKs
      // and left wrote only once the next save has begun, so that one finished.
      await waitUntil(
        () => {
          const log = readFileSync(broker.logFile, 'utf8')
          const published = log.indexOf('Client publisher-1 disconnected')
          return published >= 0 && log.slice(published).split(`Saving in-memory database to ${data}`).length - 1 >= 2
        },
        'the broker should have finished an autosave begun after the messages were queued',
        10_000,
      )
      await broker.kill()
      await broker.restart()
      assert.deepEqual(await resumeSession(broker, 'persistence/crash'), { sessionPresent: true, messages: queued })
    } finally {
      await topology.stop()
    }
  })

  it('refuses an autosave interval that is not a whole number of seconds', async () => {
    await assert.rejects(
      startTopology({ brokerPersistence: { autosaveIntervalSeconds: 0.5 } }),
      (error: unknown) => error instanceof TopologyError && /autosaveIntervalSeconds must be a whole number/.test(error.message),
    )
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

describe('local topology exit guard', function () {
  this.timeout(60_000)

  for (const order of ['before', 'after'] as const) {
    it(`leaves SIGTERM to an application that registered its handler ${order} startTopology`, async () => {
      const child = await startChildTopology({ brokers: 1 }, order)
      child.signal('SIGTERM')
      const { code, signal, lines } = await child.closed

      assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'the application should have ended by itself after its graceful stop')
      assert.deepEqual(JSON.parse(lines.at(-1) ?? '{}'), { drained: { directoryExisted: true, brokerReachable: true } })
      assert.equal(existsSync(child.directory), false)
      assert.deepEqual(
        child.pids.filter((pid) => !hasExited(pid)),
        [],
      )
    })
  }

  it('cleans up and dies by SIGTERM, SIGINT or SIGHUP when the application does not handle it', async () => {
    const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const
    const children = await Promise.all(signals.map(() => startChildTopology({ brokers: 1 }, 'none')))
    children.forEach((child, index) => child.signal(signals[index]!))
    const ends = await Promise.all(children.map((child) => child.closed))

    assert.deepEqual(
      ends.map(({ code, signal }) => ({ code, signal })),
      signals.map((signal) => ({ code: null, signal })),
    )
    for (const child of children) {
      assert.equal(existsSync(child.directory), false)
      await waitUntil(() => child.pids.every(hasExited), `broker ${child.pids.join(', ')} should have ended`, ORPHAN_EXIT_WAIT_MS)
    }
  })

  it('ends the servers of a node process that was SIGKILLed, by their parent-death signal', async function () {
    if (!existsSync('/usr/bin/setpriv')) {
      this.skip()
    }
    const child = await startChildTopology({ brokers: 1, postgres: true }, 'none')
    try {
      assert.ok(child.pids.every((pid) => !hasExited(pid)))
      child.signal('SIGKILL')
      assert.equal((await child.closed).signal, 'SIGKILL')
      await waitUntil(
        () => child.pids.every(hasExited),
        `the broker and the postmaster (${child.pids.join(', ')}) should end with their node process`,
        ORPHAN_EXIT_WAIT_MS,
      )
    } finally {
      child.signal('SIGKILL')
      // No hook ran to remove it.
      await rm(child.directory, { recursive: true, force: true })
    }
  })

  it('ends the NATS nodes of a node process that was SIGKILLed, and of one that exits, too', async function () {
    if (!existsSync('/usr/bin/setpriv')) {
      this.skip()
    }
    const [killed, terminated] = await Promise.all([
      startChildTopology({ brokers: 2, brokerKind: 'nats' }, 'none'),
      startChildTopology({ brokers: 2, brokerKind: 'nats' }, 'none'),
    ])
    try {
      killed.signal('SIGKILL')
      terminated.signal('SIGTERM')
      assert.equal((await killed.closed).signal, 'SIGKILL')
      assert.equal((await terminated.closed).signal, 'SIGTERM')
      for (const child of [killed, terminated]) {
        await waitUntil(() => child.pids.every(hasExited), `the nodes ${child.pids.join(', ')} should end with their node process`, ORPHAN_EXIT_WAIT_MS)
      }
      assert.equal(existsSync(terminated.directory), false)
    } finally {
      killed.signal('SIGKILL')
      await rm(killed.directory, { recursive: true, force: true })
    }
  })

  it('stops brokers with SIGTERM even right after they started', async () => {
    // Started side by side, a broker is often still on its way into its main
    // loop when stop() comes; a SIGTERM lost there would be escalated to
    // SIGKILL after the grace period, and the log would not say "terminating".
    const topologies = await Promise.all([1, 2, 3].map(() => startTopology({ brokers: 1, keepDirectory: true })))
    try {
      await Promise.all(topologies.map((topology) => topology.stop()))
      for (const topology of topologies) {
        assert.match(readFileSync(topology.brokers[0]!.logFile, 'utf8'), /mosquitto version \S+ terminating/)
      }
    } finally {
      await Promise.all(topologies.map((topology) => rm(topology.directory, { recursive: true, force: true })))
    }
  })

  it('shares one exit listener and one per signal among all live topologies', async () => {
    const before = { exit: process.listenerCount('exit'), SIGTERM: process.listenerCount('SIGTERM') }
    const topologies = await Promise.all([startTopology({ brokers: 1 }), startTopology({ brokers: 1 })])
    try {
      assert.ok(process.listenerCount('exit') <= before.exit + 1)
      assert.ok(process.listenerCount('SIGTERM') <= before.SIGTERM + 1)
    } finally {
      await Promise.all(topologies.map((topology) => topology.stop()))
    }
    assert.deepEqual({ exit: process.listenerCount('exit'), SIGTERM: process.listenerCount('SIGTERM') }, before)
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

  it('refuses a TMPDIR the postgres and mosquitto users cannot reach, saying what to set', async function () {
    if (process.getuid?.() !== 0) {
      // Without root, the servers run as the current user, who reaches it.
      this.skip()
    }
    const privateDirectory = await mkdtemp(join(tmpdir(), 'rmq-private-'))
    try {
      await chmod(privateDirectory, 0o700)
      await withEnvironment('TMPDIR', privateDirectory, async () => {
        for (const [options, user] of [
          [{ brokers: 1 }, 'mosquitto'],
          [{ brokers: 0, postgres: true }, 'postgres'],
        ] as const) {
          await assert.rejects(
            startTopology(options),
            (error: unknown) =>
              error instanceof TopologyError &&
              error.message.includes(`not reachable by the "${user}" user: ${privateDirectory} (mode 700`) &&
              error.message.includes('set TMPDIR=/tmp'),
          )
        }
      })
    } finally {
      await rm(privateDirectory, { recursive: true, force: true })
    }
  })

  it('rejects inconsistent options before starting anything', async () => {
    await assert.rejects(startTopology({ replicas: 1, postgres: false }), TopologyError)
    await assert.rejects(startTopology({ brokers: 0, replicas: 2, replicaApplyDelayMs: [100] }), TopologyError)
    await assert.rejects(startTopology({ brokers: -1 }), TopologyError)
  })
})
