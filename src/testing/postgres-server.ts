import { execFile } from 'node:child_process'
import { appendFile, chown, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import type { ExitGuard } from './exit-guard.js'
import type { TopologyBinaries } from './locate-binaries.js'
import type { OsAccount } from './os-account.js'
import type { PostgresHandle, PostgresRole } from './postgres-handle.js'
import { acceptsConnections } from './probe-port.js'
import { runCommand } from './run-command.js'
import { SupervisedProcess } from './supervised-process.js'
import { SupervisedServer } from './supervised-server.js'
import { TopologyError } from './topology-error.js'

const HOST = '127.0.0.1'
const SUPERUSER = 'postgres'
const GRACEFUL_STOP_MS = 15_000
const TOOL_TIMEOUT_MS = 60_000
const UNIX_SOCKET_PATH_LIMIT = 107

/**
 * Everything needed to run one PostgreSQL server.
 *
 * @example
 * const options: PostgresServerOptions = {
 *   name: 'primary', directory: '/tmp/rmq-x/primary', port: 45432, binaries: found.postgres!,
 *   account: lookupOsAccount('postgres'), startTimeoutMs: 30_000, guard,
 * }
 */
export interface PostgresServerOptions {
  readonly name: string
  readonly directory: string
  readonly port: number
  readonly binaries: NonNullable<TopologyBinaries['postgres']>
  /** Run the server and its tools as this user; required when the session is root. */
  readonly account: OsAccount | undefined
  readonly startTimeoutMs: number
  readonly guard: ExitGuard
}

/**
 * A PostgreSQL server process started directly as `postgres -D <dataDir>`,
 * so its pid is the postmaster's and it can be crashed with SIGKILL. Built
 * either as a fresh primary (initdb) or as a streaming replica of one
 * (pg_basebackup with its own physical replication slot).
 *
 * @example
 * const primary = await PostgresServer.initPrimary(options, { maxReplicas: 2 })
 * const replica = await PostgresServer.cloneReplica(primary, replicaOptions, { slot: 'replica_1', applyDelayMs: 0 })
 */
export class PostgresServer extends SupervisedServer implements PostgresHandle {
  static #promotions = 0

  readonly dataDir: string
  readonly #options: PostgresServerOptions
  readonly #slot: string | undefined
  #role: PostgresRole
  #promotion = 0

  /**
   * Creates a cluster with initdb, configures it for replication and speed
   * (no fsync: test data only; commits still flushed as by default) and starts it.
   *
   * @example
   * const primary = await PostgresServer.initPrimary(options, { maxReplicas: 2 })
   */
  static async initPrimary(
    options: PostgresServerOptions,
    settings: { readonly maxReplicas: number },
  ): Promise<PostgresServer> {
    const server = new PostgresServer(options, 'primary', undefined)
    await server.#createDirectory()
    await server.#runTool('initdb', [
      `--pgdata=${server.dataDir}`,
      '--auth=trust',
      `--username=${SUPERUSER}`,
      '--encoding=UTF8',
      '--locale=C',
      '--no-sync',
      '--no-instructions',
    ])
    const senders = Math.max(10, settings.maxReplicas + 5)
    await server.#appendConfiguration({
      listen_addresses: HOST,
      wal_level: 'replica',
      max_wal_senders: senders,
      max_replication_slots: senders,
      hot_standby: 'on',
      fsync: 'off',
      full_page_writes: 'off',
      // PostgreSQL's default, as users run it: a commit's WAL is flushed (and
      // streamed to the replicas) before the commit returns. Off, the WAL
      // writer flushes it up to ~200 ms later, and every replica looks that
      // far behind what the primary has already shown. Without fsync it costs
      // no disk wait.
      synchronous_commit: 'on',
      shared_buffers: '32MB',
      jit: 'off',
      // Segments in the data directory vanish with it, even after a SIGKILL;
      // the default POSIX segments in /dev/shm would outlive the topology.
      dynamic_shared_memory_type: 'mmap',
      // Replicas inherit this file; retrying the primary quickly keeps
      // failover tests short.
      wal_retrieve_retry_interval: '200ms',
      logging_collector: 'off',
      log_destination: 'stderr',
      lc_messages: 'C',
    })
    await writeFile(
      join(server.dataDir, 'pg_hba.conf'),
      [
        'local all all trust',
        'local replication all trust',
        `host all all ${HOST}/32 trust`,
        `host replication all ${HOST}/32 trust`,
        '',
      ].join('\n'),
    )
    await server.launch()
    return server
  }

  /**
   * Copies `primary` with pg_basebackup (streaming through the physical
   * replication slot `slot`, writing standby.signal and primary_conninfo)
   * and starts the copy as a hot standby that applies WAL `applyDelayMs`
   * late.
   *
   * @example
   * const replica = await PostgresServer.cloneReplica(primary, options, { slot: 'replica_1', applyDelayMs: 300 })
   */
  static async cloneReplica(
    primary: PostgresServer,
    options: PostgresServerOptions,
    settings: { readonly slot: string; readonly applyDelayMs: number },
  ): Promise<PostgresServer> {
    const server = new PostgresServer(options, 'replica', settings.slot)
    await server.#createDirectory()
    // pg_basebackup --create-slot makes the slot only after the backup's
    // start point is fixed; another clone's fast checkpoint in between can
    // recycle the WAL this backup still needs ("requested WAL segment ... has
    // already been removed"). A slot made first, reserving WAL at once,
    // holds everything from before the backup's checkpoint.
    await ensureSlot(primary, settings.slot)
    await server.#runTool('pg_basebackup', [
      `--host=${HOST}`,
      `--port=${primary.port}`,
      `--username=${SUPERUSER}`,
      `--pgdata=${server.dataDir}`,
      '--write-recovery-conf',
      '--wal-method=stream',
      '--checkpoint=fast',
      `--slot=${settings.slot}`,
      '--no-sync',
    ])
    await server.#appendConfiguration({
      hot_standby: 'on',
      recovery_min_apply_delay: `${settings.applyDelayMs}ms`,
    })
    await server.launch()
    return server
  }

  private constructor(options: PostgresServerOptions, role: PostgresRole, slot: string | undefined) {
    const socket = join(options.directory, `.s.PGSQL.${options.port}`)
    if (Buffer.byteLength(socket) > UNIX_SOCKET_PATH_LIMIT) {
      throw new TopologyError(
        `The Unix socket path ${socket} is longer than ${UNIX_SOCKET_PATH_LIMIT} bytes, which PostgreSQL cannot bind. ` +
          'Point TMPDIR at a short directory such as /tmp.',
      )
    }
    const dataDir = join(options.directory, 'data')
    const logFile = join(options.directory, 'postgres.log')
    super(
      {
        name: options.name,
        host: HOST,
        port: options.port,
        // Without sslmode in the URL, clients would take a developer's
        // PGSSLMODE, and this server speaks no TLS.
        url: `postgres://${SUPERUSER}@${HOST}:${options.port}/postgres?sslmode=disable`,
        directory: options.directory,
        logFile,
      },
      new SupervisedProcess({
        name: options.name,
        command: options.binaries.postgres,
        args: ['-D', dataDir],
        cwd: options.directory,
        logFile,
        account: options.account,
        guard: options.guard,
        // An immediate shutdown still releases the server's shared memory,
        // which a SIGKILL would leak once the directory is gone.
        guardSignal: 'SIGQUIT',
        readyLine: /database system is ready to accept (read-only )?connections/,
        startTimeoutMs: options.startTimeoutMs,
      }),
    )
    this.#options = Object.freeze({ ...options })
    this.#role = role
    this.#slot = slot
    this.dataDir = dataDir
  }

  get role(): PostgresRole {
    return this.#role
  }

  /**
   * 0 for a server created as the primary; for a promoted replica, a
   * process-wide sequence number, so the server promoted last has the
   * highest. The topology uses it to tell which primary is the current one.
   *
   * @example
   * const current = servers.filter((s) => s.role === 'primary').sort((a, b) => b.promotion - a.promotion)[0]
   */
  get promotion(): number {
    return this.#promotion
  }

  promote(): Promise<void> {
    return this.serialize(() => this.#promoteNow())
  }

  follow(primary: PostgresHandle | { readonly host: string; readonly port: number }): Promise<void> {
    return this.serialize(() => this.#followNow(primary))
  }

  protected async shutDown(): Promise<void> {
    await this.process.stop('SIGINT', GRACEFUL_STOP_MS)
    await this.#releaseCrashedSharedMemory()
  }

  async #promoteNow(): Promise<void> {
    if (this.#role !== 'replica') {
      throw new TopologyError(`${this.name} is already a primary; promote() only applies to replicas.`)
    }
    if (!this.running) {
      throw new TopologyError(`${this.name} is not running; restart() it before promoting it.`)
    }
    const client = connectionTo(this)
    let recovering: boolean | undefined
    try {
      await client.connect()
      await client.query('SELECT pg_promote(wait => true, wait_seconds => 60)')
      const result = await client.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering')
      recovering = result.rows[0]?.recovering
    } catch (error) {
      throw new TopologyError(
        `Promoting ${this.name} failed (${error instanceof Error ? error.message : String(error)}); check ${this.logFile} for the reason.`,
        { cause: error },
      )
    } finally {
      await client.end().catch(() => undefined)
    }
    if (recovering !== false) {
      throw new TopologyError(`${this.name} is still in recovery after pg_promote(); check ${this.logFile} for the reason.`)
    }
    this.#role = 'primary'
    this.#promotion = ++PostgresServer.#promotions
  }

  async #followNow(primary: PostgresHandle | { readonly host: string; readonly port: number }): Promise<void> {
    if (this.#role !== 'replica') {
      throw new TopologyError(`${this.name} is a primary; follow() only applies to replicas. Start a new topology to get another replica.`)
    }
    if (!this.running) {
      throw new TopologyError(`${this.name} is not running; restart() it before pointing it at another primary.`)
    }
    const slot = this.#slot as string
    if ('role' in primary) {
      // Slots are not replicated: a promoted replica lacks this replica's
      // slot, and the walreceiver would be refused without it.
      await ensureSlot(primary, slot)
    }
    const conninfo = Object.entries({
      host: primary.host,
      port: primary.port,
      user: SUPERUSER,
      application_name: this.name,
      sslmode: 'disable',
    })
      // libpq's quoting: a host could be anything the caller passes.
      .map(([key, value]) => `${key}='${String(value).replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`)
      .join(' ')
    const client = connectionTo(this)
    try {
      await client.connect()
      // ALTER SYSTEM takes no parameters and refuses to run in a transaction
      // block, which a multi-statement query would be.
      await client.query(`ALTER SYSTEM SET primary_conninfo = ${client.escapeLiteral(conninfo)}`)
      await client.query(`ALTER SYSTEM SET primary_slot_name = ${client.escapeLiteral(slot)}`)
      // Since PostgreSQL 13 a reload restarts the WAL receiver with the new
      // settings; recovery_target_timeline 'latest' then follows a promoted
      // server's new timeline.
      await client.query('SELECT pg_reload_conf()')
    } catch (error) {
      throw new TopologyError(
        `Pointing ${this.name} at ${primary.host}:${primary.port} failed (${error instanceof Error ? error.message : String(error)}); ` +
          `check ${this.logFile} for the reason.`,
        { cause: error },
      )
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  protected async startServer(): Promise<void> {
    try {
      await this.process.start()
    } catch (error) {
      await this.#releaseCrashedSharedMemory()
      throw error
    }
    if (!(await acceptsConnections(HOST, this.port))) {
      await this.process.kill()
      throw new TopologyError(
        `${this.name} reported that it accepts connections but refused one on ${HOST}:${this.port}. Check ${this.logFile}.`,
      )
    }
  }

  async #createDirectory(): Promise<void> {
    await mkdir(this.directory, { mode: 0o755 })
    const account = this.#options.account
    if (account !== undefined) {
      await chown(this.directory, account.uid, account.gid)
    }
  }

  async #runTool(tool: 'initdb' | 'pg_basebackup', args: string[]): Promise<void> {
    const binaries = this.#options.binaries
    await runCommand({
      name: `${tool} for ${this.name}`,
      command: tool === 'initdb' ? binaries.initdb : binaries.pgBasebackup,
      args,
      cwd: this.directory,
      logFile: join(this.directory, `${tool}.log`),
      account: this.#options.account,
      guard: this.#options.guard,
      guardSignal: 'SIGKILL',
      timeoutMs: TOOL_TIMEOUT_MS,
    })
  }

  async #appendConfiguration(settings: Readonly<Record<string, string | number>>): Promise<void> {
    const own: Record<string, string | number> = {
      port: this.port,
      unix_socket_directories: this.directory,
      cluster_name: this.name,
      ...settings,
    }
    const lines = Object.entries(own).map(([key, value]) =>
      typeof value === 'number' ? `${key} = ${value}` : `${key} = '${value.replaceAll("'", "''")}'`,
    )
    // Later lines win, so this overrides initdb's defaults and, on a replica,
    // the primary's values copied by pg_basebackup.
    await appendFile(join(this.dataDir, 'postgresql.conf'), `\n${lines.join('\n')}\n`)
  }

  async #releaseCrashedSharedMemory(): Promise<void> {
    // A postmaster that did not shut down cleanly leaves postmaster.pid and
    // its System V segment behind; the 7th line of the file names the
    // segment. A restart would reclaim it, a removed directory never will.
    let lines: string[]
    try {
      lines = (await readFile(join(this.dataDir, 'postmaster.pid'), 'utf8')).split('\n')
    } catch {
      return
    }
    const segmentId = lines[6]?.trim().split(/\s+/)[1]
    if (segmentId === undefined || !/^\d+$/.test(segmentId)) {
      return
    }
    await new Promise<void>((resolve) => execFile('ipcrm', ['-m', segmentId], () => resolve()))
  }
}

// Every setting explicit, so a developer's PG* variables (PGSSLMODE=require,
// PGUSER, PGDATABASE...) cannot redirect the launcher's own connections.
function connectionTo(server: { readonly host: string; readonly port: number }): pg.Client {
  return new pg.Client({ host: server.host, port: server.port, user: SUPERUSER, database: 'postgres', ssl: false })
}

async function ensureSlot(server: PostgresHandle, slot: string): Promise<void> {
  const client = connectionTo(server)
  try {
    await client.connect()
    // `true` reserves WAL from the last checkpoint's redo point at once,
    // instead of from the first time a receiver connects.
    await client.query(
      `SELECT pg_create_physical_replication_slot($1, true)
        WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`,
      [slot],
    )
  } catch (error) {
    throw new TopologyError(
      `Creating the replication slot ${slot} on ${server.name} failed (${error instanceof Error ? error.message : String(error)}); ` +
        `check ${server.logFile} for the reason.`,
      { cause: error },
    )
  } finally {
    await client.end().catch(() => undefined)
  }
}
