import { chmod, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RouteMqError } from '../routemq/errors/route-mq-error.js'
import { assertTraversable } from './assert-traversable.js'
import { ExitGuard } from './exit-guard.js'
import { freePorts } from './free-port.js'
import { LocalTopology } from './local-topology.js'
import { locateBinaries, type TopologyBinaries } from './locate-binaries.js'
import { MosquittoBroker, type MosquittoBrokerOptions } from './mosquitto-broker.js'
import { lookupOsAccount, type OsAccount } from './os-account.js'
import { PostgresServer, type PostgresServerOptions } from './postgres-server.js'
import type { Topology } from './topology.js'
import { TopologyError } from './topology-error.js'
import type { TopologyOptions } from './topology-options.js'

const DEFAULT_START_TIMEOUT_MS = 30_000

/**
 * Starts real Mosquitto brokers and a real PostgreSQL primary with streaming
 * replicas on free loopback ports, in a fresh temporary directory, and
 * resolves once every process accepts connections. Brokers start while the
 * primary is being created; replicas are cloned in parallel.
 *
 * Throws {@link MissingBinaryError} before starting anything when an
 * executable is missing, and {@link TopologyError} (quoting the failing
 * process's log) when a process does not come up; whatever did start is
 * stopped again first.
 *
 * @example
 * const topology = await startTopology({ brokers: 3, replicas: 2, replicaApplyDelayMs: 300 })
 * const client = await mqtt.connectAsync(topology.brokers[0].url)
 * const pool = new pg.Pool({ connectionString: topology.primary!.url })
 * await topology.stop()
 */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const settings = resolveSettings(options)
  const binaries = locateBinaries({ mosquitto: settings.brokers > 0, postgres: settings.postgres }, settings.binaries)
  const runningAsRoot = process.getuid?.() === 0
  const mosquittoAccount = runningAsRoot ? lookupOsAccount('mosquitto') : undefined
  const postgresAccount = settings.postgres && runningAsRoot ? requirePostgresAccount() : undefined

  const serviceAccounts = [
    ...(settings.brokers > 0 && mosquittoAccount !== undefined ? [mosquittoAccount] : []),
    ...(postgresAccount === undefined ? [] : [postgresAccount]),
  ]
  assertTraversable(tmpdir(), serviceAccounts)

  const directory = await mkdtemp(join(tmpdir(), 'rmq-'))
  const guard = new ExitGuard(directory, !settings.keepDirectory)
  const launch: Launch = { settings, directory, guard, ports: [], brokers: [], primary: undefined, replicas: [], failures: [] }
  try {
    // The PostgreSQL user must be able to reach its directories inside.
    await chmod(directory, 0o755)
    const websocketPorts = settings.websockets ? settings.brokers : 0
    const postgresPorts = settings.postgres ? 1 + settings.replicas : 0
    launch.ports.push(...(await freePorts(settings.brokers + websocketPorts + postgresPorts)))
    await Promise.all([
      launchBrokers(launch, binaries.mosquitto, {
        account: mosquittoAccount,
        keepRootPrivileges: runningAsRoot && mosquittoAccount === undefined,
      }),
      launchPostgres(launch, binaries.postgres, postgresAccount),
    ])
  } catch (error) {
    launch.failures.push(error)
  }

  const topology = new LocalTopology({
    directory,
    // Arrays with holes where a launch failed; spreading would keep them.
    brokers: launch.brokers.filter(() => true),
    primary: launch.primary,
    replicas: launch.replicas.filter(() => true),
    guard,
    keepDirectory: settings.keepDirectory,
  })
  const [failure] = launch.failures
  if (failure !== undefined) {
    await topology.stop().catch(() => undefined)
    throw failure instanceof RouteMqError
      ? failure
      : new TopologyError(`Starting the topology in ${directory} failed: ${String(failure)}`, { cause: failure })
  }
  return topology
}

interface Launch {
  readonly settings: ResolvedSettings
  readonly directory: string
  readonly guard: ExitGuard
  readonly ports: number[]
  readonly brokers: MosquittoBroker[]
  primary: PostgresServer | undefined
  readonly replicas: PostgresServer[]
  readonly failures: unknown[]
}

async function launchBrokers(
  launch: Launch,
  binary: string | undefined,
  privileges: { readonly account: OsAccount | undefined; readonly keepRootPrivileges: boolean },
): Promise<void> {
  if (binary === undefined) {
    return
  }
  const { settings, directory, guard } = launch
  await Promise.all(
    Array.from({ length: settings.brokers }, (_, index) => {
      const name = `broker-${index + 1}`
      const options: MosquittoBrokerOptions = {
        name,
        directory: join(directory, name),
        port: nextPort(launch),
        websocketPort: settings.websockets ? nextPort(launch) : undefined,
        binary,
        extraConfig: settings.brokerConfig,
        ...privileges,
        startTimeoutMs: settings.startTimeoutMs,
        guard,
      }
      return recordFailure(launch, async () => {
        launch.brokers[index] = await MosquittoBroker.launch(options)
      })
    }),
  )
}

async function launchPostgres(
  launch: Launch,
  binaries: TopologyBinaries['postgres'],
  account: OsAccount | undefined,
): Promise<void> {
  if (binaries === undefined) {
    return
  }
  const { settings, directory, guard } = launch
  const serverOptions = (name: string): PostgresServerOptions => ({
    name,
    directory: join(directory, name),
    port: nextPort(launch),
    binaries,
    account,
    startTimeoutMs: settings.startTimeoutMs,
    guard,
  })
  const primaryOptions = serverOptions('primary')
  const replicaOptions = settings.applyDelaysMs.map((_, index) => serverOptions(`replica-${index + 1}`))
  await recordFailure(launch, async () => {
    launch.primary = await PostgresServer.initPrimary(primaryOptions, { maxReplicas: settings.replicas })
  })
  const primary = launch.primary
  if (primary === undefined) {
    return
  }
  await Promise.all(
    replicaOptions.map((options, index) =>
      recordFailure(launch, async () => {
        launch.replicas[index] = await PostgresServer.cloneReplica(primary, options, {
          slot: `replica_${index + 1}`,
          applyDelayMs: settings.applyDelaysMs[index] ?? 0,
        })
      }),
    ),
  )
}

// Failures are collected instead of rejecting at once, so that every launch
// has settled, and everything that did start is known, before cleaning up.
async function recordFailure(launch: Launch, step: () => Promise<void>): Promise<void> {
  try {
    await step()
  } catch (error) {
    launch.failures.push(error)
  }
}

function nextPort(launch: Launch): number {
  const port = launch.ports.shift()
  if (port === undefined) {
    throw new TopologyError('The topology ran out of reserved ports; this is a bug in startTopology, please report it.')
  }
  return port
}

interface ResolvedSettings {
  readonly brokers: number
  readonly replicas: number
  readonly postgres: boolean
  readonly applyDelaysMs: readonly number[]
  readonly websockets: boolean
  readonly brokerConfig: string
  readonly keepDirectory: boolean
  readonly startTimeoutMs: number
  readonly binaries: NonNullable<TopologyOptions['binaries']>
}

function resolveSettings(options: TopologyOptions): ResolvedSettings {
  const brokers = wholeNumber('brokers', options.brokers ?? 1)
  const replicas = wholeNumber('replicas', options.replicas ?? 0)
  const postgres = options.postgres ?? replicas > 0
  if (!postgres && replicas > 0) {
    throw new TopologyError(
      `replicas: ${replicas} needs a primary to replicate from, but postgres is false. Set postgres: true or replicas: 0.`,
    )
  }
  const delay = options.replicaApplyDelayMs ?? 0
  const applyDelaysMs = typeof delay === 'number' ? Array.from({ length: replicas }, () => delay) : [...delay]
  if (applyDelaysMs.length !== replicas) {
    throw new TopologyError(
      `replicaApplyDelayMs has ${applyDelaysMs.length} entries for ${replicas} replicas. Give one per replica, or a single number for all.`,
    )
  }
  applyDelaysMs.forEach((value, index) => wholeNumber(`replicaApplyDelayMs[${index}]`, value))
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  if (!(startTimeoutMs > 0)) {
    throw new TopologyError(`startTimeoutMs must be a positive number of milliseconds, got ${startTimeoutMs}.`)
  }
  return Object.freeze({
    brokers,
    replicas,
    postgres,
    applyDelaysMs: Object.freeze(applyDelaysMs),
    websockets: options.websockets ?? false,
    brokerConfig: options.brokerConfig ?? '',
    keepDirectory: options.keepDirectory ?? false,
    startTimeoutMs,
    binaries: Object.freeze({ ...options.binaries }),
  })
}

function wholeNumber(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TopologyError(`${option} must be a whole number of at least 0, got ${value}.`)
  }
  return value
}

function requirePostgresAccount(): OsAccount {
  const account = lookupOsAccount('postgres')
  if (account === undefined) {
    throw new TopologyError(
      'PostgreSQL refuses to run as root and there is no "postgres" OS user to run it as. ' +
        'Install the postgresql package (which creates the user), create it with `useradd --system postgres`, or run as an unprivileged user.',
    )
  }
  return account
}
