import { describeExit } from './exit-status.js'
import { killProcessTree } from './kill-process-tree.js'
import { spawnLogged, type LoggedChild, type LoggedSpawnOptions } from './spawn-logged.js'
import { TopologyError } from './topology-error.js'

/**
 * A long-running server process and how to tell that it is ready.
 *
 * @example
 * const options: SupervisedProcessOptions = {
 *   ...spawnOptions, name: 'broker-1', readyLine: /mosquitto version \S+ running/, startTimeoutMs: 30_000,
 * }
 */
export interface SupervisedProcessOptions extends LoggedSpawnOptions {
  readonly name: string
  /** A line the process writes to stdout or stderr once it serves requests. */
  readonly readyLine: RegExp
  readonly startTimeoutMs: number
}

/**
 * Starts, signals and restarts one server process with the same command line
 * each time. Readiness is the process's own log line, never a polling loop.
 *
 * @example
 * const broker = new SupervisedProcess(options)
 * await broker.start()
 * await broker.kill()
 * await broker.start()
 */
export class SupervisedProcess {
  readonly #options: SupervisedProcessOptions
  #current: LoggedChild | undefined

  constructor(options: SupervisedProcessOptions) {
    this.#options = Object.freeze({ ...options, args: Object.freeze([...options.args]) })
  }

  /**
   * The id of the process most recently started, even after it has ended.
   *
   * @example
   * process.kill(server.pid!, 0)
   */
  get pid(): number | undefined {
    return this.#current?.child.pid
  }

  /**
   * Whether the most recently started process has not exited yet.
   *
   * @example
   * if (server.running) await server.stop('SIGTERM', 10_000)
   */
  get running(): boolean {
    return this.#current !== undefined && isRunning(this.#current)
  }

  /**
   * Spawns the process and resolves once it has written its ready line;
   * rejects with a {@link TopologyError} quoting its log if it exits first or
   * overruns the start timeout (it is killed then).
   *
   * @example
   * await server.start()
   */
  async start(): Promise<void> {
    if (this.running) {
      throw new TopologyError(`${this.#options.name} is already running (pid ${this.pid}); stop or kill it before starting it again.`)
    }
    const started = spawnLogged(this.#options)
    this.#current = started
    try {
      await this.#whenReady(started)
    } catch (error) {
      this.#killTree(started)
      await started.closed
      throw error
    }
  }

  /**
   * Crashes the process: SIGKILLs it and every process descending from it
   * (see {@link killProcessTree}) and resolves once all of them are gone.
   *
   * @example
   * await server.kill()
   */
  async kill(): Promise<void> {
    const current = this.#current
    if (current === undefined) {
      return
    }
    this.#killTree(current)
    await current.closed
  }

  /**
   * Sends `signal` and resolves once the process and its children are gone;
   * after `graceMs` crashes them as {@link kill} does.
   *
   * @example
   * await server.stop('SIGTERM', 10_000)
   */
  async stop(signal: NodeJS.Signals, graceMs: number): Promise<void> {
    const current = this.#current
    if (current === undefined) {
      return
    }
    if (isRunning(current)) {
      current.child.kill(signal)
    }
    const timer = setTimeout(() => this.#killTree(current), graceMs)
    await current.closed
    clearTimeout(timer)
  }

  #killTree(started: LoggedChild): void {
    // While node has not seen the exit, the pid cannot have been reused.
    if (isRunning(started)) {
      killProcessTree(started.child.pid as number)
    }
  }

  #whenReady(started: LoggedChild): Promise<void> {
    const { name, readyLine, startTimeoutMs, logFile } = this.#options
    return new Promise<void>((resolve, reject) => {
      let settled = false
      const settle = (error?: TopologyError): void => {
        if (settled) {
          return
        }
        settled = true
        clearTimeout(timer)
        unsubscribe()
        if (error === undefined) {
          resolve()
        } else {
          reject(error)
        }
      }
      const timer = setTimeout(
        () =>
          settle(
            new TopologyError(
              `${name} did not report readiness (a line matching ${readyLine}) within ${startTimeoutMs} ms. ` +
                `Raise startTimeoutMs on a slow machine, or fix the cause shown in the last lines of ${logFile}:\n${started.log.tail()}`,
            ),
          ),
        startTimeoutMs,
      )
      const unsubscribe = started.log.onLine((line) => {
        if (readyLine.test(line)) {
          settle()
        }
      })
      void started.exited.then(async (status) => {
        // The exit can overtake the last output lines, which usually carry the
        // reason; wait for the pipes to drain before quoting them.
        await started.closed
        settle(
          new TopologyError(
            `${name} ${describeExit(status)} before it was ready. Fix the cause shown in the last lines of ${logFile}:\n${started.log.tail()}`,
            { cause: status.error },
          ),
        )
      })
    })
  }
}

function isRunning({ child }: LoggedChild): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null
}
