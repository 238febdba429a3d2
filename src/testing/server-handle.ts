/**
 * What every server of a local test topology offers: where it listens, its
 * files, and a lifecycle a test can break on purpose.
 *
 * @example
 * for (const server of [...topology.brokers, ...topology.replicas]) console.log(server.name, server.url)
 */
export interface ServerHandle {
  /** `broker-1`, `nats-1`, `primary`, `replica-1`, ... */
  readonly name: string
  /** Always `127.0.0.1`. */
  readonly host: string
  readonly port: number
  readonly url: string
  /** The server's own directory: its configuration, logs and data. */
  readonly directory: string
  readonly logFile: string
  /** Id of the process most recently started, even once it has ended. */
  readonly pid: number | undefined
  /** Whether the process is alive. */
  readonly running: boolean

  /**
   * Crashes the server with SIGKILL; resolves once it is gone.
   *
   * @example
   * await server.kill()
   */
  kill(): Promise<void>

  /**
   * Starts the server again on the same port (stopping it first if it runs);
   * resolves once it accepts connections. Rejects with a `TopologyError` once
   * the topology's `stop()` has been called, even if it was called while
   * this restart was under way.
   *
   * `kill()`, `stop()`, `restart()` (and `promote()`, `follow()`) of one
   * server run one after another in call order: two concurrent restarts both
   * succeed and leave one process running; `restart()` then `kill()` leaves
   * it killed.
   *
   * @example
   * await server.restart()
   */
  restart(): Promise<void>

  /**
   * Shuts the server down gracefully; resolves once it has exited.
   *
   * @example
   * await server.stop()
   */
  stop(): Promise<void>
}
