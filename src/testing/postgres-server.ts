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
  readonly dataDir: string
  readonly #options: PostgresServerOptions
  #role: PostgresRole

  /**
   * Creates a cluster with initdb, configures it for replication and speed
   * (no fsync: test data only) and starts it.
   *
   * @example
   * const primary = await PostgresServer.initPrimary(options, { maxReplicas: 2 })
   */
  static async initPrimary(
    options: PostgresServerOptions,
    settings: { readonly maxReplicas: number },
  ): Promise<PostgresServer> {
    const server = new PostgresServer(options, 'primary')
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
      synchronous_commit: 'off',
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
   * Copies `primary` with pg_basebackup (creating the physical replication
   * slot `slot`, writing standby.signal and primary_conninfo) and starts the
   * copy as a hot standby that applies WAL `applyDelayMs` late.
   *
   * @example
   * const replica = await PostgresServer.cloneReplica(primary, options, { slot: 'replica_1', applyDelayMs: 300 })
   */
  static async cloneReplica(
    primary: PostgresServer,
    options: PostgresServerOptions,
    settings: { readonly slot: string; readonly applyDelayMs: number },
  ): Promise<PostgresServer> {
    const server = new PostgresServer(options, 'replica')
    await server.#createDirectory()
    await server.#runTool('pg_basebackup', [
      `--host=${HOST}`,
      `--port=${primary.port}`,
      `--username=${SUPERUSER}`,
      `--pgdata=${server.dataDir}`,
      '--write-recovery-conf',
      '--wal-method=stream',
      '--checkpoint=fast',
      '--create-slot',
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

  private constructor(options: PostgresServerOptions, role: PostgresRole) {
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
        url: `postgres://${SUPERUSER}@${HOST}:${options.port}/postgres`,
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
    this.dataDir = dataDir
  }

  get role(): PostgresRole {
    return this.#role
  }

  async stop(): Promise<void> {
    await this.process.stop('SIGINT', GRACEFUL_STOP_MS)
    await this.#releaseCrashedSharedMemory()
  }

  async promote(): Promise<void> {
    if (this.#role !== 'replica') {
      throw new TopologyError(`${this.name} is already a primary; promote() only applies to replicas.`)
    }
    if (!this.running) {
      throw new TopologyError(`${this.name} is not running; restart() it before promoting it.`)
    }
    const client = new pg.Client({ host: HOST, port: this.port, user: SUPERUSER, database: 'postgres' })
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
  }

  protected async launch(): Promise<void> {
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
