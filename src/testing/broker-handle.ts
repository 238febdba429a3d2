import type { ServerHandle } from './server-handle.js'

/**
 * One broker of a local test topology, listening for MQTT on loopback at
 * `mqtt://127.0.0.1:<port>`: a Mosquitto broker (`broker-1`, ...), whose
 * directory holds `mosquitto.conf`, `mosquitto.log` and, when persistent,
 * `data/`; or a node of a NATS cluster (`nats-1`, ...), whose directory holds
 * `nats-server.conf`, `nats-server.log` and `jetstream/`. Data directories
 * are kept across `kill()` and `restart()`. `stop()` sends SIGTERM.
 *
 * @example
 * const [broker] = topology.brokers
 * const client = await mqtt.connectAsync(broker.url)
 * await broker.kill()    // crash it
 * await broker.restart() // same port, accepting connections again
 */
export interface BrokerHandle extends ServerHandle {
  /** `ws://127.0.0.1:<port>` when the topology was started with `websockets: true`; never for NATS. */
  readonly wsUrl: string | undefined
}
