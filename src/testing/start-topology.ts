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
import { planNatsCluster } from './nats-cluster-plan.js'
import { NatsServer } from './nats-server.js'
import { lookupOsAccount, type OsAccount } from './os-account.js'
import { PostgresServer, type PostgresServerOptions } from './postgres-server.js'
import type { Topology } from './topology.js'
import { TopologyError } from './topology-error.js'
import type { TopologyOptions } from './topology-options.js'
import { resolveTopologySettings, type TopologySettings } from './topology-settings.js'

/**
 * Starts real brokers (independent Mosquitto brokers, optionally persistent,
 * or a NATS cluster with MQTT: see {@link TopologyOptions.brokerKind}) and a
 * real PostgreSQL primary with streaming replicas on free loopback ports, in
 * a fresh temporary directory, and resolves once every process accepts
 * connections (a NATS node once it accepts an MQTT session). Brokers start
 * while the primary is being created; replicas are cloned in parallel, and
 * NATS nodes start side by side to form their cluster.
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
 *
 * const cluster = await startTopology({ brokers: 3, brokerKind: 'nats' })
 * const device = await mqtt.connectAsync(cluster.brokers[2].url, { protocolVersion: 4 })
 */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const settings = resolveTopologySettings(options)
  const mosquittoBrokers = settings.brokerKind === 'mosquitto' ? settings.brokers : 0
  const natsNodes = settings.brokerKind === 'nats' ? settings.brokers : 0
  const binaries = locateBinaries(
    { mosquitto: mosquittoBrokers > 0, natsServer: natsNodes > 0, postgres: settings.postgres },
    settings.binaries,
  )
  const runningAsRoot = process.getuid?.() === 0
  const mosquittoAccount = runningAsRoot ? lookupOsAccount('mosquitto') : undefined
  const postgresAccount = settings.postgres && runningAsRoot ? requirePostgresAccount() : undefined

  const serviceAccounts = [
    ...(mosquittoBrokers > 0 && mosquittoAccount !== undefined ? [mosquittoAccount] : []),
    ...(postgresAccount === undefined ? [] : [postgresAccount]),
  ]
  assertTraversable(tmpdir(), serviceAccounts)

  const directory = await mkdtemp(join(tmpdir(), 'rmq-'))
  const guard = new ExitGuard(directory, !settings.keepDirectory)
  const launch: Launch = { settings, directory, guard, ports: [], brokers: [], primary: undefined, replicas: [], failures: [] }
  try {
    // The PostgreSQL user must be able to reach its directories inside.
    await chmod(directory, 0o755)
    const mosquittoPorts = mosquittoBrokers * (settings.websockets ? 2 : 1)
    // Client, MQTT and, in a cluster, route ports.
    const natsPorts = natsNodes * (natsNodes > 1 ? 3 : 2)
    const postgresPorts = settings.postgres ? 1 + settings.replicas : 0
    launch.ports.push(...(await freePorts(mosquittoPorts + natsPorts + postgresPorts)))
    await Promise.all([
      launchMosquittoBrokers(launch, binaries.mosquitto, {
        account: mosquittoAccount,
        keepRootPrivileges: runningAsRoot && mosquittoAccount === undefined,
      }),
      launchNatsCluster(launch, binaries.natsServer),
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
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever a launch step threw; a non-Error has nothing better than String()
      : new TopologyError(`Starting the topology in ${directory} failed: ${String(failure)}`, { cause: failure })
  }
  return topology
}

interface Launch {
  readonly settings: TopologySettings
  readonly directory: string
  readonly guard: ExitGuard
  readonly ports: number[]
  readonly brokers: (MosquittoBroker | NatsServer)[]
  primary: PostgresServer | undefined
  readonly replicas: PostgresServer[]
  readonly failures: unknown[]
}

async function launchMosquittoBrokers(
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
        persistence: settings.brokerPersistence,
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

async function launchNatsCluster(launch: Launch, binary: string | undefined): Promise<void> {
  if (binary === undefined) {
    return
  }
  const { settings, directory, guard } = launch
  const plans = planNatsCluster({
    nodes: settings.brokers,
    directory,
    binary,
    extraConfig: settings.brokerConfig,
    startTimeoutMs: settings.startTimeoutMs,
    guard,
    nextPort: () => nextPort(launch),
  })
  let nodes: NatsServer[] = []
  await recordFailure(launch, async () => {
    nodes = await Promise.all(plans.map((plan) => NatsServer.create(plan)))
    launch.brokers.push(...nodes)
  })
  // All processes start at once, since a node waits for its peers before it
  // serves MQTT; the MQTT checks then go one node after another.
  let turn: Promise<unknown> = Promise.resolve()
  await Promise.all(
    nodes.map((node) => {
      const started = node.startInTurn(turn)
      turn = started
      return recordFailure(launch, () => started)
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
