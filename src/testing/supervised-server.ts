import type { ServerHandle } from './server-handle.js'
import type { SupervisedProcess } from './supervised-process.js'

/** Where a server listens and keeps its files. */
export type ServerPlacement = Pick<ServerHandle, 'name' | 'host' | 'port' | 'url' | 'directory' | 'logFile'>

/**
 * The lifecycle shared by the topology's servers: one supervised process that
 * can be crashed, stopped and started again in place. Subclasses say how the
 * server starts and stops.
 *
 * @example
 * class EchoServer extends SupervisedServer {
 *   protected async launch() { await this.process.start() }
 *   stop() { return this.process.stop('SIGTERM', 5000) }
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
    return this.process.kill()
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.launch()
  }

  abstract stop(): Promise<void>

  /** Starts the process and resolves once the server accepts connections. */
  protected abstract launch(): Promise<void>
}
