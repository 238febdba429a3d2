// node dist/test/bench/replicas.bench.js: compares read routing over a real
// PostgreSQL 15 primary with two streaming replicas, on one topology, for
// our ReplicaPool dialect, kysely-replication (round robin) and, for the
// overhead part, plain Kysely on one replica:
//   (a) per-query latency of primary-key selects, sequential;
//   (b) p99 with one replica behind a 20 ms round-trip proxy, 4 workers;
//   (c) failed reads when a replica is SIGKILLed under 4 workers;
//   (d) stale reads right after a write, with a 300 ms apply delay;
//   (e) read-your-writes with replicas streaming normally, then with one
//       replica 300 ms behind: stale reads, reads served by replicas, and
//       what waiting for a replica costs a read;
//   (f) each replica's lag as ours reports it, against its true apply delay,
//       under steady writes.
// Progress goes to stderr; stdout holds the tables and, as its last line,
// one JSON object.
//
// BENCH_PARTS picks the parts to run, by letter (e.g. BENCH_PARTS=a for the
// overhead alone, BENCH_PARTS=ef); unset or empty runs them all. Only the
// tables and JSON fields of the parts run are printed.
import { setTimeout as sleep } from 'node:timers/promises'
import { Kysely, PostgresDialect } from 'kysely'
import { KyselyReplicationDialect } from 'kysely-replication'
import { RoundRobinReplicaStrategy } from 'kysely-replication/strategy/round-robin'
import pg from 'pg'
import { migrateToLatest, ReplicaPool, ReplicatedPostgresDialect, withConsistencyKey } from '../../plugins/kysely/index.js'
import { raceTimeout } from '../../src/routemq/race-timeout.js'
import { startTopology, type PostgresHandle, type Topology } from '../../src/testing/index.js'
import { cpuList, pinProcesses, postmasterPid, type Pinning } from '../support/cpu-affinity.js'
import { printTable } from '../support/print-table.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'

interface Database {
  bench_items: { id: number; value: string }
}

type ClientName = 'plain' | 'ours' | 'kr'

const ROWS = 1000
const OVERHEAD_WARMUP = 500
// On a small shared machine the round-trip time drifts by tens of percent
// within seconds, far more than the differences measured here: the clients
// take turns query by query, so every one sees the same drift. A "round" is
// a slice of 200 consecutive turns, for the spread of the ratio.
const OVERHEAD_ROUNDS = 50
const OVERHEAD_QUERIES_PER_ROUND = 200
/** Blocks of OVERHEAD_QUERIES_PER_ROUND queries per client for the CPU figure. */
const OVERHEAD_CPU_ROUNDS = 10
const WORKERS = 4
const SLOW_LATENCY_MS = 10
const SLOW_WARMUP_QUERIES = 400
const SLOW_MEASURE_MS = 3000
const KILL_RUN_MS = 5000
const KILL_AT_MS = 1500
const APPLY_DELAY = '300ms'
const STALE_ITERATIONS = 300
// Every wait is bounded, so that a server or client that never comes back
// shows up as an error instead of a benchmark that hangs.
const REPLAY_TIMEOUT_MS = 30_000
const SETTING_TIMEOUT_MS = 5000
const WORKERS_STOP_TIMEOUT_MS = 20_000
const CONNECT_TIMEOUT_MS = 2000

type Part = 'a' | 'b' | 'c' | 'd' | 'e' | 'f'

/** The parts BENCH_PARTS asks for; all of them when it is unset or empty. */
function selectedParts(value: string | undefined): ReadonlySet<Part> {
  const letters = (value ?? '').toLowerCase().replace(/[\s,]/g, '')
  if (letters === '') return new Set<Part>(['a', 'b', 'c', 'd', 'e', 'f'])
  const unknown = [...letters].filter((letter) => !'abcdef'.includes(letter))
  if (unknown.length > 0) throw new Error(`BENCH_PARTS=${value}: no part ${unknown.join(', ')} (the parts are a to f)`)
  return new Set([...letters] as Part[])
}

const PARTS = selectedParts(process.env.BENCH_PARTS)

const LABELS: Record<ClientName, string> = {
  plain: 'plain Kysely (replica 1 only)',
  ours: 'ours (ReplicaPool)',
  kr: 'kysely-replication (round robin)',
}

function log(message: string): void {
  process.stderr.write(`${message}\n`)
}

function errorText(error: unknown): string {
  return error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)
}

// A multiplier coprime with ROWS walks every id before repeating, so no
// client keeps hitting one cached row.
function keyAt(i: number): number {
  return ((i * 7919) % ROWS) + 1
}

/** Nearest-rank percentile; NaN when there is nothing to rank. */
function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals
  return Math.round(value * factor) / factor
}

function ms(value: number): string {
  return Number.isNaN(value) ? '-' : `${round(value, 2)} ms`
}

function us(valueMs: number): string {
  return Number.isNaN(valueMs) ? '-' : `${Math.round(valueMs * 1000)} µs`
}

/** postgres:// URL of the `postgres` database through a proxy, as the topology's own URLs are written. */
function proxiedUrl(proxy: TcpFaultProxy): string {
  return `postgres://postgres@127.0.0.1:${proxy.port}/postgres?sslmode=disable`
}

// ---------------------------------------------------------------------------
// Clients under test. Pool sizes are left at their defaults (10 per server
// for all three), as a user would start them.

interface ClientUnderTest {
  readonly name: ClientName
  readonly db: Kysely<Database>
  /** Only for ours: the pool, for its counters. */
  readonly pool?: ReplicaPool
}

/**
 * A pg pool as a careful user sets it up for PostgresDialect. pg emits
 * 'error' on a client whose server dies, idle (through the pool) or checked
 * out (on the client itself, which neither pg-pool nor Kysely listens to);
 * unheard, either throws at the process and would end the benchmark at the
 * first SIGKILL. The query in flight fails on its own and is counted.
 */
function pgPool(connectionString: string): pg.Pool {
  const pool = new pg.Pool({ connectionString })
  pool.on('error', () => undefined)
  pool.on('connect', (client) => client.on('error', () => undefined))
  return pool
}

function openPlain(url: string): ClientUnderTest {
  return { name: 'plain', db: new Kysely<Database>({ dialect: new PostgresDialect({ pool: pgPool(url) }) }) }
}

async function openOurs(primary: string, replicas: readonly string[]): Promise<ClientUnderTest> {
  const pool = await ReplicaPool.create({ primary, replicas })
  return { name: 'ours', db: new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(pool) }), pool }
}

function openKr(primary: string, replicas: readonly string[]): ClientUnderTest {
  const dialect = (url: string): PostgresDialect => new PostgresDialect({ pool: pgPool(url) })
  const [first, ...rest] = replicas
  if (first === undefined) throw new Error('kysely-replication needs at least one replica')
  return {
    name: 'kr',
    db: new Kysely<Database>({
      dialect: new KyselyReplicationDialect({
        primaryDialect: dialect(primary),
        replicaDialects: [dialect(first), ...rest.map(dialect)],
        replicaStrategy: new RoundRobinReplicaStrategy({ onTransaction: 'error' }),
      }),
    }),
  }
}

// Whatever is open, so that a failing part still leaves nothing behind and
// the process can exit by itself.
const open = new Set<{ close(): Promise<void> }>()

function track<T extends { close(): Promise<void> }>(resource: T): T {
  open.add(resource)
  return resource
}

async function release(resource: { close(): Promise<void> }): Promise<void> {
  open.delete(resource)
  await resource.close()
}

function closable(client: ClientUnderTest): ClientUnderTest & { close(): Promise<void> } {
  return { ...client, close: () => client.db.destroy() }
}

async function selectItem(db: Kysely<Database>, id: number): Promise<void> {
  const row = await db.selectFrom('bench_items').selectAll().where('id', '=', id).executeTakeFirst()
  // A wrong answer must not pass for a fast one.
  if (row?.id !== id) throw new Error(`select of id ${id} returned ${JSON.stringify(row)}`)
}

// ---------------------------------------------------------------------------
// Server helpers, on short-lived connections of their own.

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS })
  // A server killed under an open client would otherwise throw at the process.
  client.on('error', () => undefined)
  await client.connect()
  try {
    return await use(client)
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Waits until every replica has replayed the primary's WAL up to where it is
 * now; retries connections, so it also waits for a replica that is still
 * starting. Returns how long that took.
 */
async function waitForReplay(topology: Topology, timeoutMs = REPLAY_TIMEOUT_MS): Promise<number> {
  const started = performance.now()
  const primary = topology.primary!
  const target = await withClient(primary.url, async (client) => {
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')
    return rows[0]!.lsn
  })
  for (const replica of topology.replicas) {
    let lastProblem: string
    for (;;) {
      try {
        const caughtUp = await withClient(replica.url, async (client) => {
          const { rows } = await client.query<{ caught_up: boolean | null }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS caught_up', [target])
          return rows[0]?.caught_up === true
        })
        if (caughtUp) break
        lastProblem = 'not replayed yet'
      } catch (error) {
        lastProblem = errorText(error)
      }
      if (performance.now() - started > timeoutMs) {
        throw new Error(`${replica.name} has not replayed the primary's WAL up to ${target} within ${timeoutMs} ms (${lastProblem})`)
      }
      await sleep(25)
    }
  }
  return performance.now() - started
}

/** Sets recovery_min_apply_delay on a replica at runtime and waits until the server reports it. */
async function setApplyDelay(replica: PostgresHandle, value: string): Promise<void> {
  await withClient(replica.url, async (client) => {
    await client.query(`ALTER SYSTEM SET recovery_min_apply_delay = '${value}'`)
    await client.query('SELECT pg_reload_conf()')
    // The reload is asynchronous: a backend picks the new file up between commands.
    const deadline = performance.now() + SETTING_TIMEOUT_MS
    for (;;) {
      const { rows } = await client.query<{ recovery_min_apply_delay: string }>('SHOW recovery_min_apply_delay')
      const shown = rows[0]!.recovery_min_apply_delay
      if (shown === value) return
      if (performance.now() > deadline) throw new Error(`${replica.name} still shows recovery_min_apply_delay = ${shown}, not ${value}, ${SETTING_TIMEOUT_MS} ms after the reload`)
      await sleep(20)
    }
  })
}

// ---------------------------------------------------------------------------
// Load generators.

interface LoadResult {
  readonly latencies: number[]
  failures: number
  firstError: string | undefined
}

/**
 * Runs `workers` loops of primary-key selects until `done(issued)` says so.
 * Failed reads are counted, not thrown: counting them is the point of (c).
 */
async function load(db: Kysely<Database>, workers: number, offset: number, done: (issued: number) => boolean): Promise<LoadResult> {
  const result: LoadResult = { latencies: [], failures: 0, firstError: undefined }
  let issued = 0
  const worker = async (): Promise<void> => {
    while (!done(issued)) {
      const id = keyAt(offset + issued++)
      const started = performance.now()
      try {
        await selectItem(db, id)
        result.latencies.push(performance.now() - started)
      } catch (error) {
        result.failures++
        result.firstError ??= errorText(error)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  return result
}

function forCount(count: number): (issued: number) => boolean {
  return (issued) => issued >= count
}

function forDuration(durationMs: number): (issued: number) => boolean {
  const end = performance.now() + durationMs
  return () => performance.now() >= end
}

// ---------------------------------------------------------------------------
// (a) Overhead.

interface OverheadResult {
  readonly name: ClientName
  readonly median: number
  readonly p99: number
  /** Per round, this client's median over plain's median in the same round. */
  readonly roundRatios: readonly number[]
  /** CPU time of this process per query (user + system, all threads), in ms: the client's own cost, apart from the servers'. */
  readonly cpuPerQuery: number
  /** Only for ours: reads each replica served, to see how the strategy spread a sequential load. */
  readonly spread?: string
  /** Whether this process and the replica ran on CPUs of their own. */
  readonly pinned: boolean
}

async function overhead(topology: Topology): Promise<OverheadResult[]> {
  const primary = topology.primary!.url
  const replicas = topology.replicas.map((replica) => replica.url)
  // All three read from the same replica: the ratio then measures the libraries, not which
  // server process (and CPU) each happened to land on.
  const clients = [
    track(closable(openPlain(replicas[0]!))),
    track(closable(await openOurs(primary, [replicas[0]!]))),
    track(closable(openKr(primary, [replicas[0]!]))),
  ]
  try {
    for (const client of clients) {
      const warm = await load(client.db, 1, 0, forCount(OVERHEAD_WARMUP))
      if (warm.failures > 0) throw new Error(`${client.name}: ${warm.failures} warm-up reads failed, first: ${warm.firstError}`)
    }
    const pinning = pinForOverhead(topology.replicas[0]!)
    try {
      return await measureOverhead(clients, pinning)
    } finally {
      for (const pinned of pinning ?? []) pinned.restore()
    }
  } finally {
    for (const client of clients) await release(client)
  }
}

/**
 * On two or more CPUs: this process (all its threads) on one, the replica
 * serving the reads (postmaster and backends) on another. Left to the
 * scheduler, each client's server backend lands on either CPU for the whole
 * run, and that placement, not the library, decided the ratio (from 1.0 to
 * 2.3 across runs); pinned, every client meets the same placement.
 */
function pinForOverhead(replica: PostgresHandle): Pinning[] | undefined {
  const cpus = expandCpuList(cpuList(process.pid))
  if (cpus.length < 2) {
    log(`(a) not pinned: ${cpus.length === 0 ? 'taskset is unavailable' : 'only one CPU'}; placement noise stays in the figures`)
    return undefined
  }
  const server = pinProcesses([postmasterPid(replica.dataDir)], String(cpus[1]))
  let self: Pinning
  try {
    // Not its children: the servers of the topology are among them.
    self = pinProcesses([process.pid], String(cpus[0]), false)
  } catch (error) {
    server.restore()
    throw error
  }
  log(`(a) pinned: this process to CPU ${cpus[0]}, ${replica.name} (${server.pids.length} processes) to CPU ${cpus[1]}`)
  return [self, server]
}

/** `0-2,5` as [0, 1, 2, 5]. */
function expandCpuList(list: string | undefined): number[] {
  if (list === undefined) return []
  return list.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number)
    return to === undefined ? [from!] : Array.from({ length: to - from! + 1 }, (_, i) => from! + i)
  })
}

/**
 * Latency: the clients take turns query by query (the order rotating each
 * turn), so whatever drifts on the machine drifts for all of them alike; per
 * "round", the medians of consecutive slices of each client's queries, which
 * span the same stretch of time. CPU: measured apart, each client running a
 * block of queries alone, since one process's CPU time cannot be split
 * between interleaved clients.
 */
async function measureOverhead(clients: readonly ClientUnderTest[], pinning: Pinning[] | undefined): Promise<OverheadResult[]> {
  const samples = new Map<ClientName, number[]>(clients.map((client) => [client.name, []]))
  const total = OVERHEAD_ROUNDS * OVERHEAD_QUERIES_PER_ROUND
  for (let i = 0; i < total; i++) {
    for (let c = 0; c < clients.length; c++) {
      const client = clients[(i + c) % clients.length]!
      const started = performance.now()
      await selectItem(client.db, keyAt(i))
      samples.get(client.name)!.push(performance.now() - started)
    }
    if ((i + 1) % (total / 5) === 0) {
      const recent = (name: ClientName) => us(percentile(samples.get(name)!.slice(-(total / 5)), 50))
      log(`(a) ${i + 1}/${total} turns: medians of the last ${total / 5} ${clients.map((c) => `${c.name} ${recent(c.name)}`).join(', ')}`)
    }
  }
  const cpu = new Map<ClientName, number>(clients.map((client) => [client.name, 0]))
  for (let r = 0; r < OVERHEAD_CPU_ROUNDS; r++) {
    for (let c = 0; c < clients.length; c++) {
      const client = clients[(r + c) % clients.length]!
      const before = process.cpuUsage()
      const result = await load(client.db, 1, r * OVERHEAD_QUERIES_PER_ROUND, forCount(OVERHEAD_QUERIES_PER_ROUND))
      const used = process.cpuUsage(before)
      if (result.failures > 0) throw new Error(`${client.name}: ${result.failures} reads failed, first: ${result.firstError}`)
      cpu.set(client.name, cpu.get(client.name)! + (used.user + used.system) / 1000)
    }
  }
  const roundMedians = (name: ClientName): number[] =>
    Array.from({ length: OVERHEAD_ROUNDS }, (_, r) =>
      percentile(samples.get(name)!.slice(r * OVERHEAD_QUERIES_PER_ROUND, (r + 1) * OVERHEAD_QUERIES_PER_ROUND), 50),
    )
  const plainMedians = roundMedians('plain')
  return clients.map((client) => ({
    name: client.name,
    median: percentile(samples.get(client.name)!, 50),
    p99: percentile(samples.get(client.name)!, 99),
    roundRatios: roundMedians(client.name).map((median, r) => median / plainMedians[r]!),
    cpuPerQuery: cpu.get(client.name)! / (OVERHEAD_CPU_ROUNDS * OVERHEAD_QUERIES_PER_ROUND),
    ...(client.pool ? { spread: client.pool.stats.replicas.map((replica) => String(replica.queries)).join(' / ') } : {}),
    pinned: pinning !== undefined,
  }))
}

// ---------------------------------------------------------------------------
// (b) Slow replica.

interface SlowResult {
  readonly name: ClientName
  readonly reads: number
  readonly p50: number
  readonly p99: number
  readonly failures: number
  /** Only for ours: what the pool believes of each replica after the run. */
  readonly believed?: string
}

async function slowReplica(topology: Topology): Promise<SlowResult[]> {
  const primary = topology.primary!.url
  const proxy = track(await TcpFaultProxy.start({ target: { host: topology.replicas[0]!.host, port: topology.replicas[0]!.port } }))
  try {
    proxy.setLatency(SLOW_LATENCY_MS)
    const replicas = [proxiedUrl(proxy), topology.replicas[1]!.url]
    const results: SlowResult[] = []
    for (const opening of [() => openOurs(primary, replicas), async () => openKr(primary, replicas)]) {
      const client = track(closable(await opening()))
      try {
        // The same warm-up for both: it fills the connection pools (each
        // connection through the proxy costs several slow round trips) and
        // gives ours latency samples of its own traffic, on top of its probes.
        const warm = await load(client.db, WORKERS, 0, forCount(SLOW_WARMUP_QUERIES))
        if (warm.failures > 0) throw new Error(`${client.name}: ${warm.failures} warm-up reads failed, first: ${warm.firstError}`)
        const result = await load(client.db, WORKERS, SLOW_WARMUP_QUERIES, forDuration(SLOW_MEASURE_MS))
        const believed = client.pool?.stats.replicas.map((r) => `${r.id} ${r.latencyMs === undefined ? '?' : round(r.latencyMs, 2)} ms/${r.queries} reads`).join(', ')
        results.push({
          name: client.name,
          reads: result.latencies.length,
          p50: percentile(result.latencies, 50),
          p99: percentile(result.latencies, 99),
          failures: result.failures,
          ...(believed === undefined ? {} : { believed }),
        })
        log(`(b) ${client.name}: ${result.latencies.length} reads, p99 ${ms(percentile(result.latencies, 99))}${believed === undefined ? '' : `; pool sees ${believed}`}`)
      } finally {
        await release(client)
      }
    }
    return results
  } finally {
    await release(proxy)
  }
}

// ---------------------------------------------------------------------------
// (c) Killed replica.

interface KillResult {
  readonly name: ClientName
  readonly reads: number
  readonly failures: number
  readonly firstError: string | undefined
  readonly slowest: number
  readonly retries: number | undefined
  readonly fallbacks: number | undefined
  readonly backAfterMs: number
}

async function killedReplica(topology: Topology): Promise<KillResult[]> {
  const primary = topology.primary!.url
  const replicas = topology.replicas.map((replica) => replica.url)
  const victim = topology.replicas[1]!
  const results: KillResult[] = []
  for (const opening of [() => openOurs(primary, replicas), async () => openKr(primary, replicas)]) {
    const client = track(closable(await opening()))
    let result: LoadResult | undefined
    let stats: ReplicaPool['stats'] | undefined
    let backAfterMs: number
    try {
      const running = load(client.db, WORKERS, 0, forDuration(KILL_RUN_MS))
      // kill() resolves once every process of the server is gone; the readers run on meanwhile.
      await sleep(KILL_AT_MS)
      await victim.kill()
      log(`(c) ${client.name}: killed ${victim.name} at ~${KILL_AT_MS} ms`)
      result = await raceTimeout(running, KILL_RUN_MS + WORKERS_STOP_TIMEOUT_MS, (): never => {
        throw new Error(`${client.name}'s readers did not finish within ${KILL_RUN_MS + WORKERS_STOP_TIMEOUT_MS} ms`)
      })
    } finally {
      stats = client.pool?.stats
      await release(client)
      // Back and replayed before anything else runs, whatever happened above.
      const restartStarted = performance.now()
      await victim.restart()
      await waitForReplay(topology)
      backAfterMs = performance.now() - restartStarted
      log(`(c) ${client.name}: ${victim.name} back and replayed after ${Math.round(backAfterMs)} ms`)
    }
    results.push({
      name: client.name,
      reads: result.latencies.length + result.failures,
      failures: result.failures,
      firstError: result.firstError,
      slowest: percentile(result.latencies, 100),
      retries: stats?.readRetries,
      fallbacks: stats?.fallbacksToPrimary,
      backAfterMs,
    })
    log(`(c) ${client.name}: ${result.failures} of ${result.latencies.length + result.failures} reads failed${result.firstError ? `, first: ${result.firstError}` : ''}`)
  }
  return results
}

// ---------------------------------------------------------------------------
// (d) Stale reads under an apply delay.

interface StaleResult {
  readonly name: ClientName
  readonly stale: number
  readonly fromReplica: number | undefined
  readonly fromPrimary: number | undefined
}

/** How long a committed update takes to become visible on each replica: shows that the delay is in force. */
async function observedApplyDelays(topology: Topology): Promise<number[]> {
  const marker = `delay-probe-${Date.now()}`
  const committed = performance.now()
  await withClient(topology.primary!.url, (client) => client.query('UPDATE bench_items SET value = $1 WHERE id = $2', [marker, ROWS]))
  return Promise.all(
    topology.replicas.map((replica) =>
      withClient(replica.url, async (client) => {
        for (;;) {
          const { rows } = await client.query<{ value: string }>('SELECT value FROM bench_items WHERE id = $1', [ROWS])
          if (rows[0]?.value === marker) return performance.now() - committed
          if (performance.now() - committed > REPLAY_TIMEOUT_MS) throw new Error(`${replica.name} did not show the update within ${REPLAY_TIMEOUT_MS} ms`)
          await sleep(5)
        }
      }),
    ),
  )
}

async function staleReads(topology: Topology): Promise<{ results: StaleResult[]; delays: number[] }> {
  const primary = topology.primary!.url
  const replicas = topology.replicas.map((replica) => replica.url)
  await Promise.all(topology.replicas.map((replica) => setApplyDelay(replica, APPLY_DELAY)))
  try {
    const delays = await observedApplyDelays(topology)
    log(`(d) apply delay ${APPLY_DELAY} in force: an update showed on the replicas after ${delays.map((d) => `${Math.round(d)} ms`).join(', ')}`)
    const results: StaleResult[] = []
    // Each client writes a row of its own, so its first read cannot match a value the other left behind.
    const rows: Record<'ours' | 'kr', number> = { ours: 1, kr: 2 }
    for (const opening of [() => openOurs(primary, replicas), async () => openKr(primary, replicas)]) {
      const client = track(closable(await opening()))
      const served = { replica: 0, primary: 0 }
      const stopCounting = client.pool?.onQuery((query) => {
        if (query.kind === 'read' && query.error === undefined) served[query.role]++
      })
      try {
        const id = rows[client.name as 'ours' | 'kr']
        let stale = 0
        for (let i = 0; i < STALE_ITERATIONS; i++) {
          const iteration = async (): Promise<void> => {
            await client.db.updateTable('bench_items').set({ value: String(i) }).where('id', '=', id).execute()
            const row = await client.db.selectFrom('bench_items').selectAll().where('id', '=', id).executeTakeFirst()
            if (row?.value !== String(i)) stale++
          }
          // Read-your-writes is opt-in for ours; kysely-replication has no such scope.
          await (client.name === 'ours' ? withConsistencyKey('bench', iteration) : iteration())
        }
        results.push({
          name: client.name,
          stale,
          fromReplica: stopCounting ? served.replica : undefined,
          fromPrimary: stopCounting ? served.primary : undefined,
        })
        log(`(d) ${client.name}: ${stale} of ${STALE_ITERATIONS} reads stale`)
      } finally {
        stopCounting?.()
        await release(client)
      }
    }
    return { results, delays }
  } finally {
    await Promise.all(topology.replicas.map((replica) => setApplyDelay(replica, '0')))
  }
}

// ---------------------------------------------------------------------------
// (e) Read-your-writes with replicas streaming normally, and with one 300 ms behind.

const RYW_ITERATIONS = 500
const NORMAL = 'streaming normally'
const DELAYED = 'replica 2 300 ms behind'

interface RywResult {
  readonly setting: string
  readonly name: ClientName
  readonly stale: number
  readonly onReplicas: number | undefined
  /** Reads served by each replica (ours), by index. */
  readonly byReplica: readonly number[] | undefined
  /** The read after the write, in ms. */
  readonly readP50: number
  readonly readP99: number
}

async function readYourWrites(topology: Topology): Promise<{ results: RywResult[]; plainReadP50: number; plainReadP99: number }> {
  const primary = topology.primary!.url
  const replicas = topology.replicas.map((replica) => replica.url)
  const results: RywResult[] = []
  // A plain read on a replica (nothing to wait for), for what read-your-writes costs a read.
  const reference = track(closable(await openOurs(primary, replicas)))
  const plainTimes: number[] = []
  try {
    for (let i = 0; i < RYW_ITERATIONS; i++) {
      const began = performance.now()
      await reference.db.selectFrom('bench_items').selectAll().where('id', '=', keyAt(i)).executeTakeFirst()
      plainTimes.push(performance.now() - began)
    }
  } finally {
    await release(reference)
  }
  const settings: [string, string][] = [[NORMAL, '0'], [DELAYED, APPLY_DELAY]]
  for (const [setting, delay] of settings) {
    await setApplyDelay(topology.replicas[1]!, delay)
    try {
      const rows: Record<'ours' | 'kr', number> = { ours: 3, kr: 4 }
      for (const opening of [() => openOurs(primary, replicas), async () => openKr(primary, replicas)]) {
        const client = track(closable(await opening()))
        try {
          const id = rows[client.name as 'ours' | 'kr']
          const before = client.pool?.stats
          let stale = 0
          const readTimes: number[] = []
          for (let i = 0; i < RYW_ITERATIONS; i++) {
            const iteration = async (): Promise<void> => {
              await client.db.updateTable('bench_items').set({ value: `ryw-${i}` }).where('id', '=', id).execute()
              const began = performance.now()
              const row = await client.db.selectFrom('bench_items').selectAll().where('id', '=', id).executeTakeFirst()
              readTimes.push(performance.now() - began)
              if (row?.value !== `ryw-${i}`) stale++
            }
            await (client.name === 'ours' ? withConsistencyKey('bench-ryw', iteration) : iteration())
          }
          const after = client.pool?.stats
          results.push({
            setting,
            name: client.name,
            stale,
            onReplicas: after && before ? after.consistentReadsOnReplicas - before.consistentReadsOnReplicas : undefined,
            byReplica: after && before ? after.replicas.map((r, i) => r.queries - before.replicas[i]!.queries) : undefined,
            readP50: percentile(readTimes, 50),
            readP99: percentile(readTimes, 99),
          })
          log(`(e) ${setting}, ${client.name}: ${stale} of ${RYW_ITERATIONS} stale`)
        } finally {
          await release(client)
        }
      }
    } finally {
      await setApplyDelay(topology.replicas[1]!, '0')
    }
  }
  return { results, plainReadP50: percentile(plainTimes, 50), plainReadP99: percentile(plainTimes, 99) }
}

// ---------------------------------------------------------------------------
// (f) Reported lag against the true apply delay, under steady writes.

const LAG_SETTLE_MS = 3000
const LAG_SAMPLES = 8

const DELAY_SAMPLES = 20

/**
 * Each replica's apply delay as a client sees it, amid the steady writes: the
 * median, over DELAY_SAMPLES updates, of the time from an update's commit to
 * its first sight on the replica (connections opened beforehand, polled
 * every millisecond).
 */
async function trueApplyDelays(topology: Topology): Promise<number[]> {
  const primary = new pg.Client({ connectionString: topology.primary!.url })
  const replicas = topology.replicas.map((replica) => new pg.Client({ connectionString: replica.url }))
  await Promise.all([primary, ...replicas].map((client) => client.connect()))
  try {
    const samples: number[][] = replicas.map(() => [])
    for (let k = 0; k < DELAY_SAMPLES; k++) {
      const marker = `true-delay-${k}-${Date.now()}`
      await primary.query('UPDATE bench_items SET value = $1 WHERE id = $2', [marker, ROWS])
      const committed = performance.now()
      await Promise.all(
        replicas.map(async (client, r) => {
          for (;;) {
            const { rows } = await client.query<{ value: string }>('SELECT value FROM bench_items WHERE id = $1', [ROWS])
            if (rows[0]?.value === marker) return void samples[r]!.push(performance.now() - committed)
            if (performance.now() - committed > REPLAY_TIMEOUT_MS) throw new Error(`replica ${r + 1} did not show the update within ${REPLAY_TIMEOUT_MS} ms`)
            await sleep(1)
          }
        }),
      )
    }
    return samples.map((values) => percentile(values, 50))
  } finally {
    await Promise.all([primary, ...replicas].map((client) => client.end().catch(() => undefined)))
  }
}

interface LagResult {
  readonly replica: string
  readonly trueMs: number
  readonly reported: readonly number[]
  /** The largest distance between a reported lag and the true delay. */
  readonly worstErrorMs: number
}

async function lagAccuracy(topology: Topology): Promise<LagResult[]> {
  await setApplyDelay(topology.replicas[1]!, APPLY_DELAY)
  const client = track(closable(await openOurs(topology.primary!.url, topology.replicas.map((replica) => replica.url))))
  let writing = true
  // Steady writes through the pool, as an application makes them: one update every 10 ms.
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      await client.db.updateTable('bench_items').set({ value: `steady-${i}` }).where('id', '=', 5).execute()
      await sleep(10)
    }
  })()
  try {
    await sleep(LAG_SETTLE_MS)
    const trueDelays = await trueApplyDelays(topology)
    const reported: number[][] = topology.replicas.map(() => [])
    for (let i = 0; i < LAG_SAMPLES; i++) {
      await sleep(1000)
      client.pool!.stats.replicas.forEach((replica, r) => reported[r]!.push(replica.lagMs ?? Number.NaN))
    }
    return topology.replicas.map((replica, r) => {
      const trueMs = trueDelays[r]!
      const worst = Math.max(...reported[r]!.map((ms) => Math.abs(ms - trueMs)))
      log(`(f) ${replica.name}: true ${Math.round(trueMs)} ms, reported ${reported[r]!.map(Math.round).join(', ')} ms`)
      return { replica: replica.name, trueMs, reported: reported[r]!, worstErrorMs: worst }
    })
  } finally {
    writing = false
    await writer
    await release(client)
    await setApplyDelay(topology.replicas[1]!, '0')
  }
}

// ---------------------------------------------------------------------------

async function prepare(topology: Topology): Promise<void> {
  // The pool measures lag from this heartbeat table; without it it falls back to replay timestamps.
  await migrateToLatest(topology.primary!.url)
  await withClient(topology.primary!.url, async (client) => {
    await client.query('CREATE TABLE bench_items (id int PRIMARY KEY, value text NOT NULL)')
    await client.query(`INSERT INTO bench_items (id, value) SELECT i, 'item-' || i FROM generate_series(1, ${ROWS}) AS i`)
  })
  const waited = await waitForReplay(topology)
  log(`${ROWS} rows replayed on both replicas after ${Math.round(waited)} ms`)
}

const started = performance.now()
let topology: Topology | undefined
const measured: {
  overhead?: OverheadResult[]
  slow?: SlowResult[]
  killed?: KillResult[]
  stale?: { results: StaleResult[]; delays: number[] }
  ryw?: Awaited<ReturnType<typeof readYourWrites>>
  lag?: LagResult[]
} = {}
let completed = false
try {
  log('starting a PostgreSQL 15 primary and 2 streaming replicas...')
  topology = await startTopology({ brokers: 0, replicas: 2 })
  await prepare(topology)
  if (PARTS.has('a')) {
    log('(a) overhead...')
    measured.overhead = await overhead(topology)
  }
  if (PARTS.has('b')) {
    log('(b) slow replica...')
    measured.slow = await slowReplica(topology)
  }
  if (PARTS.has('c')) {
    log('(c) killed replica...')
    measured.killed = await killedReplica(topology)
  }
  if (PARTS.has('d')) {
    log('(d) stale reads...')
    measured.stale = await staleReads(topology)
  }
  if (PARTS.has('e')) {
    log('(e) read-your-writes...')
    measured.ryw = await readYourWrites(topology)
  }
  if (PARTS.has('f')) {
    log('(f) lag as reported...')
    measured.lag = await lagAccuracy(topology)
  }
  completed = true
} catch (error) {
  log(`benchmark aborted: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
} finally {
  for (const resource of [...open]) await release(resource).catch((error: unknown) => log(`closing failed: ${errorText(error)}`))
  await topology?.stop()
}
log(`done in ${Math.round((performance.now() - started) / 1000)} s`)

if (completed) {
  const by = <R extends { readonly name: ClientName }>(results: readonly R[], name: ClientName): R => {
    const found = results.find((r) => r.name === name)
    if (!found) throw new Error(`no result for ${name}`)
    return found
  }
  const summary: Record<string, number | boolean> = {}
  if (measured.overhead) {
    const plain = by(measured.overhead, 'plain')
    printTable(
      `(a) Overhead: sequential primary-key selects, ${OVERHEAD_ROUNDS * OVERHEAD_QUERIES_PER_ROUND} per client taking turns query by query ` +
        `after ${OVERHEAD_WARMUP} warm-up queries; a round is ${OVERHEAD_QUERIES_PER_ROUND} consecutive turns; ` +
        'order rotated each turn; ratio = median / plain median; node CPU = user + system time of this process, ' +
        `over ${OVERHEAD_CPU_ROUNDS} blocks of ${OVERHEAD_QUERIES_PER_ROUND} queries per client run alone; ` +
        (plain.pinned ? 'this process and replica 1 pinned to CPUs of their own' : 'not pinned (see stderr)'),
      [
        ['client', 'median', 'p99', 'ratio', 'per-round ratio p25 / p50 / p75', 'node CPU/query', 'reads per replica'],
        ...measured.overhead.map((r) => [
          LABELS[r.name],
          us(r.median),
          us(r.p99),
          (r.median / plain.median).toFixed(3),
          [25, 50, 75].map((p) => percentile(r.roundRatios, p).toFixed(3)).join(' / '),
          us(r.cpuPerQuery),
          r.spread ?? (r.name === 'kr' ? 'alternating' : 'replica 1 only'),
        ]),
      ],
    )
    const ours = by(measured.overhead, 'ours')
    const kr = by(measured.overhead, 'kr')
    Object.assign(summary, {
      overhead_ratio_ours: round(ours.median / plain.median, 3),
      overhead_ratio_kr: round(kr.median / plain.median, 3),
      overhead_round_ratio_p50_ours: round(percentile(ours.roundRatios, 50), 3),
      overhead_round_ratio_p50_kr: round(percentile(kr.roundRatios, 50), 3),
      overhead_pinned: plain.pinned,
      overhead_median_us_plain: round(plain.median * 1000, 1),
      overhead_median_us_ours: round(ours.median * 1000, 1),
      overhead_median_us_kr: round(kr.median * 1000, 1),
      overhead_cpu_us_per_query_plain: round(plain.cpuPerQuery * 1000, 1),
      overhead_cpu_us_per_query_ours: round(ours.cpuPerQuery * 1000, 1),
      overhead_cpu_us_per_query_kr: round(kr.cpuPerQuery * 1000, 1),
    })
  }
  if (measured.slow) {
    printTable(
      `(b) Slow replica: replica 1 behind a proxy adding ${SLOW_LATENCY_MS} ms per direction (${2 * SLOW_LATENCY_MS} ms per round trip), ` +
        `${WORKERS} workers for ${SLOW_MEASURE_MS / 1000} s after a ${SLOW_WARMUP_QUERIES}-query warm-up; ours with default 1 s probes`,
      [
        ['client', 'reads', 'p50', 'p99', 'failed', 'pool view after the run'],
        ...measured.slow.map((r) => [LABELS[r.name], String(r.reads), ms(r.p50), ms(r.p99), String(r.failures), r.believed ?? '-']),
      ],
    )
    Object.assign(summary, {
      slow_replica_p99_ms_ours: round(by(measured.slow, 'ours').p99, 2),
      slow_replica_p99_ms_kr: round(by(measured.slow, 'kr').p99, 2),
    })
  }
  if (measured.killed) {
    printTable(
      `(c) Killed replica: ${WORKERS} workers reading for ${KILL_RUN_MS / 1000} s, replica 2 SIGKILLed at ~${KILL_AT_MS / 1000} s, ` +
        'restarted and replayed before the next client',
      [
        ['client', 'reads', 'failed', 'slowest success', 'retried elsewhere', 'to primary', 'back after', 'first error'],
        ...measured.killed.map((r) => [
          LABELS[r.name],
          String(r.reads),
          String(r.failures),
          ms(r.slowest),
          r.retries === undefined ? '-' : String(r.retries),
          r.fallbacks === undefined ? '-' : String(r.fallbacks),
          `${Math.round(r.backAfterMs)} ms`,
          r.firstError ?? '-',
        ]),
      ],
    )
    Object.assign(summary, {
      killed_replica_failed_reads_ours: by(measured.killed, 'ours').failures,
      killed_replica_failed_reads_kr: by(measured.killed, 'kr').failures,
    })
  }
  if (measured.stale) {
    const { results, delays } = measured.stale
    printTable(
      `(d) Stale reads: recovery_min_apply_delay = ${APPLY_DELAY} on both replicas (an update showed there after ` +
        `${delays.map((d) => `${Math.round(d)} ms`).join(' / ')}); ${STALE_ITERATIONS} x (update, then read it back); ` +
        "ours inside withConsistencyKey('bench')",
      [
        ['client', 'stale reads', 'reads served by a replica', 'by the primary'],
        ...results.map((r) => [
          LABELS[r.name],
          `${r.stale} / ${STALE_ITERATIONS}`,
          r.fromReplica === undefined ? `${STALE_ITERATIONS} (all)` : String(r.fromReplica),
          r.fromPrimary === undefined ? '0' : String(r.fromPrimary),
        ]),
      ],
    )
    Object.assign(summary, {
      stale_reads_ours: by(results, 'ours').stale,
      stale_reads_kr: by(results, 'kr').stale,
    })
  }
  if (measured.ryw) {
    const { results, plainReadP50, plainReadP99 } = measured.ryw
    printTable(
      `(e) Read-your-writes: ${RYW_ITERATIONS} x (update, then read it back), ours inside withConsistencyKey; ` +
        `read times are the read alone (a plain read on a replica: p50 ${us(plainReadP50)}, p99 ${us(plainReadP99)})`,
      [
        ['replicas', 'client', 'stale reads', 'on replicas', 'by replica 1 / 2', 'read p50', 'read p99'],
        ...results.map((r) => [
          r.setting,
          LABELS[r.name],
          `${r.stale} / ${RYW_ITERATIONS}`,
          r.onReplicas === undefined ? `${RYW_ITERATIONS} (all)` : `${r.onReplicas} (${((100 * r.onReplicas) / RYW_ITERATIONS).toFixed(1)} %)`,
          r.byReplica?.join(' / ') ?? 'alternating',
          us(r.readP50),
          us(r.readP99),
        ]),
      ],
    )
    const ryw = (setting: string, name: ClientName): RywResult => results.find((r) => r.setting === setting && r.name === name)!
    const normal = ryw(NORMAL, 'ours')
    const delayed = ryw(DELAYED, 'ours')
    Object.assign(summary, {
      ryw_normal_on_replicas_share_ours: round(normal.onReplicas! / RYW_ITERATIONS, 3),
      ryw_normal_stale_ours: normal.stale,
      ryw_normal_stale_kr: ryw(NORMAL, 'kr').stale,
      ryw_normal_read_p50_us_ours: round(normal.readP50 * 1000, 1),
      ryw_plain_read_p50_us_ours: round(plainReadP50 * 1000, 1),
      ryw_delayed_stale_ours: delayed.stale,
      ryw_delayed_stale_kr: ryw(DELAYED, 'kr').stale,
      ryw_delayed_on_fresh_replica_ours: delayed.byReplica![0]!,
      ryw_delayed_on_late_replica_ours: delayed.byReplica![1]!,
    })
  }
  if (measured.lag) {
    printTable(
      `(f) Lag as ours reports it (stats, once a second for ${LAG_SAMPLES} s) against the true apply delay (median of ${DELAY_SAMPLES} updates' time ` +
        'from commit to first sight on the replica, polled every ms), ' +
        'under one update every 10 ms through the pool; replica 2 at recovery_min_apply_delay = 300ms',
      [
        ['replica', 'true delay', 'reported', 'worst error'],
        ...measured.lag.map((r) => [r.replica, ms(r.trueMs), `${r.reported.map((v) => `${Math.round(v)}`).join(' ')} ms`, ms(r.worstErrorMs)]),
      ],
    )
    measured.lag.forEach((r, i) => {
      summary[`lag_true_ms_replica_${i + 1}`] = round(r.trueMs, 1)
      summary[`lag_worst_error_ms_replica_${i + 1}`] = round(r.worstErrorMs, 1)
    })
  }
  console.log(JSON.stringify(summary))
}
