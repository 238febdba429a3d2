import type { ServerHandle } from './server-handle.js'
import type { SupervisedProcess } from './supervised-process.js'
import { TopologyError } from './topology-error.js'

/** Where a server listens and keeps its files. */
export type ServerPlacement = Pick<ServerHandle, 'name' | 'host' | 'port' | 'url' | 'directory' | 'logFile'>

/**
 * The lifecycle shared by the topology's servers: one supervised process that
 * can be crashed, stopped and started again in place. Lifecycle operations
 * (kill, stop, restart and a subclass's own, through `serialize`) run one
 * after another in call order, so concurrent calls never interleave. Once
 * `retire()`d, the server can still be stopped but never started again.
 * Subclasses say how the server starts and stops.
 *
 * @example
 * class EchoServer extends SupervisedServer {
 *   protected async startServer() { await this.process.start() }
 *   protected shutDown() { return this.process.stop('SIGTERM', 5000) }
 * }
 */
export abstract class SupervisedServer implements ServerHandle {
  readonly name: string
  readonly host: string
  readonly port: number
  readonly url: string
  readonly directory: string
  readonly logFile: string
  protected readonly process: SupervisedProcess
  #retired = false
  #lifecycle: Promise<void> = Promise.resolve()

  protected constructor(placement: ServerPlacement, process: SupervisedProcess) {
    this.name = placement.name
    this.host = placement.host
    this.port = placement.port
    this.url = placement.url
    this.directory = placement.directory
    this.logFile = placement.logFile
    this.process = process
  }

  get pid(): number | undefined {
    return this.process.pid
  }

  get running(): boolean {
    return this.process.running
  }

  kill(): Promise<void> {
    return this.serialize(() => this.process.kill())
  }

  stop(): Promise<void> {
    return this.serialize(() => this.shutDown())
  }

  restart(): Promise<void> {
    return this.serialize(async () => {
      await this.shutDown()
      await this.launch()
    })
  }

  /**
   * Marks the server as belonging to a stopped topology: from now on starting
   * it throws a {@link TopologyError}. The topology calls it, synchronously,
   * as the first step of its teardown, so a restart that is still waiting
   * for the old process to exit cannot start a new one behind its back.
   *
   * @example
   * server.retire()
   * await server.stop()
   */
  retire(): void {
    this.#retired = true
  }

  /**
   * Runs `operation` once every lifecycle operation called before it has
   * settled, whether it succeeded or not.
   *
   * @example
   * promote() { return this.serialize(() => this.#promoteNow()) }
   */
  protected serialize<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#lifecycle.then(operation)
    this.#lifecycle = result.then(
      () => undefined,
      () => undefined,
    )
    return result
  }

  /**
   * Starts the process and resolves once the server accepts connections;
   * throws a {@link TopologyError} once the server is retired.
   *
   * @example
   * await server.launch()
   */
  protected async launch(): Promise<void> {
    if (this.#retired) {
      throw new TopologyError(
        `${this.name} cannot be started: this topology was stopped, and its servers and directory belong to no one any more. ` +
          'Start a new topology with startTopology() instead of restarting servers of a stopped one.',
      )
    }
    await this.startServer()
  }

  /** Starts the process and resolves once the server accepts connections. */
  protected abstract startServer(): Promise<void>

  /** Stops the process gracefully and resolves once it has exited. */
  protected abstract shutDown(): Promise<void>
}
