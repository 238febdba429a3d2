/**
 * What one nats-server node of a local cluster is told in its configuration
 * file.
 *
 * @example
 * const config: NatsNodeConfig = {
 *   serverName: 'nats-1', clientPort: 44222, mqttPort: 41883, storeDirectory: '/tmp/rmq-x/nats-1/jetstream',
 *   cluster: { name: 'rmq-x', port: 46222, routes: [46223, 46224] }, replicas: 3, extraConfig: '',
 * }
 */
export interface NatsNodeConfig {
  /** Required by nats-server for MQTT, and unique within the cluster. */
  readonly serverName: string
  readonly clientPort: number
  readonly mqttPort: number
  /** JetStream's file store, where MQTT sessions and retained messages live. */
  readonly storeDirectory: string
  /** `undefined` for a single node, which runs without a cluster block. */
  readonly cluster:
    | {
        readonly name: string
        readonly port: number
        /** The other nodes' cluster ports. */
        readonly routes: readonly number[]
      }
    | undefined
  /** Replicas of the MQTT streams and consumers, at most the number of nodes. */
  readonly replicas: number
  /** nats-server configuration appended after the generated lines. */
  readonly extraConfig: string
}

const HOST = '127.0.0.1'

/**
 * Renders a node's configuration file: loopback client, cluster and MQTT
 * listeners, JetStream in its own store directory, and MQTT streams replicated
 * to `replicas` nodes so a persistent session survives the loss of a node and
 * can be resumed on any other.
 *
 * @example
 * await writeFile(join(directory, 'nats-server.conf'), renderNatsConfig(config))
 */
export function renderNatsConfig(config: NatsNodeConfig): string {
  const { cluster } = config
  const lines = [
    `server_name: ${JSON.stringify(config.serverName)}`,
    `listen: ${HOST}:${config.clientPort}`,
    ...(cluster === undefined
      ? []
      : [
          'cluster {',
          `  name: ${JSON.stringify(cluster.name)}`,
          `  listen: ${HOST}:${cluster.port}`,
          `  routes: [ ${cluster.routes.map((port) => `nats://${HOST}:${port}`).join(', ')} ]`,
          '}',
        ]),
    `jetstream { store_dir: ${JSON.stringify(config.storeDirectory)}, max_memory_store: 256MB, max_file_store: 2GB }`,
    `mqtt { listen: ${HOST}:${config.mqttPort}, stream_replicas: ${config.replicas}, consumer_replicas: ${config.replicas} }`,
    config.extraConfig,
  ]
  return `${lines.join('\n')}\n`
}
