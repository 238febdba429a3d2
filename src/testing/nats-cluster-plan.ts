import { basename, join } from 'node:path'
import type { ExitGuard } from './exit-guard.js'
import type { NatsServerOptions } from './nats-server.js'

// JetStream replicates a stream to at most this many nodes.
const MAX_REPLICAS = 3

/**
 * What a NATS cluster of a topology is made of.
 *
 * @example
 * const request: NatsClusterRequest = {
 *   nodes: 3, directory: '/tmp/rmq-x', binary: '/usr/sbin/nats-server', extraConfig: '',
 *   startTimeoutMs: 30_000, guard, nextPort: () => ports.shift()!,
 * }
 */
export interface NatsClusterRequest {
  readonly nodes: number
  /** The topology's directory; each node gets `nats-<n>/` in it. */
  readonly directory: string
  readonly binary: string
  readonly extraConfig: string
  readonly startTimeoutMs: number
  readonly guard: ExitGuard
  /** Hands out a reserved free port; called two or three times per node. */
  readonly nextPort: () => number
}

/**
 * The options of every node of an n-node cluster, `nats-1` first: ports for
 * clients, routes and MQTT, each node routing to all others, and MQTT
 * streams replicated to min(3, n) nodes. A single node runs without a
 * cluster.
 *
 * @example
 * const nodes = await Promise.all(planNatsCluster(request).map((options) => NatsServer.create(options)))
 */
export function planNatsCluster(request: NatsClusterRequest): NatsServerOptions[] {
  const { nodes, directory } = request
  const ports = Array.from({ length: nodes }, () => ({
    client: request.nextPort(),
    mqtt: request.nextPort(),
    cluster: nodes > 1 ? request.nextPort() : undefined,
  }))
  // Unique per topology, so that no node ever joins another topology's cluster.
  const clusterName = basename(directory)
  return ports.map((own, index) => {
    const name = `nats-${index + 1}`
    const nodeDirectory = join(directory, name)
    return {
      name,
      directory: nodeDirectory,
      binary: request.binary,
      config: {
        serverName: name,
        clientPort: own.client,
        mqttPort: own.mqtt,
        storeDirectory: join(nodeDirectory, 'jetstream'),
        cluster:
          own.cluster === undefined
            ? undefined
            : {
                name: clusterName,
                port: own.cluster,
                routes: ports.filter((other) => other !== own).map((other) => other.cluster as number),
              },
        replicas: Math.min(MAX_REPLICAS, nodes),
        extraConfig: request.extraConfig,
      },
      startTimeoutMs: request.startTimeoutMs,
      guard: request.guard,
    }
  })
}
