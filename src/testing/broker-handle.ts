/**
 * One Mosquitto broker of a local test topology, listening on loopback.
 *
 * @example
 * const [broker] = topology.brokers
 * const client = await mqtt.connectAsync(broker.url)
 * await broker.kill()    // crash it
 * await broker.restart() // same port, accepting connections again
 */
export interface BrokerHandle {
  /** `broker-1`, `broker-2`, ... */
  readonly name: string
  /** Always `127.0.0.1`. */
  readonly host: string
  readonly port: number
  /** `mqtt://127.0.0.1:<port>` */
  readonly url: string
  /** `ws://127.0.0.1:<port>` when the topology was started with `websockets: true`. */
  readonly wsUrl: string | undefined
  /** The broker's own directory, holding `mosquitto.conf` and `mosquitto.log`. */
  readonly directory: string
  readonly logFile: string
  /** Id of the broker process most recently started, even once it has ended. */
  readonly pid: number | undefined
  /** Whether the broker process is alive. */
  readonly running: boolean

  /**
   * Crashes the broker with SIGKILL; resolves once the process has exited.
   *
   * @example
   * await broker.kill()
   */
  kill(): Promise<void>

  /**
   * Starts the broker again on the same port (stopping it first if it runs);
   * resolves once it accepts connections.
   *
   * @example
   * await broker.restart()
   */
  restart(): Promise<void>

  /**
   * Shuts the broker down gracefully with SIGTERM; resolves once it exited.
   *
   * @example
   * await broker.stop()
   */
  stop(): Promise<void>
}
