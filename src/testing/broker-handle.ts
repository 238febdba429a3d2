import type { ServerHandle } from './server-handle.js'

/**
 * One Mosquitto broker of a local test topology, listening on loopback at
 * `mqtt://127.0.0.1:<port>`; its directory holds `mosquitto.conf` and
 * `mosquitto.log`. `stop()` sends SIGTERM.
 *
 * @example
 * const [broker] = topology.brokers
 * const client = await mqtt.connectAsync(broker.url)
 * await broker.kill()    // crash it
 * await broker.restart() // same port, accepting connections again
 */
export interface BrokerHandle extends ServerHandle {
  /** `ws://127.0.0.1:<port>` when the topology was started with `websockets: true`. */
  readonly wsUrl: string | undefined
}
