import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

const TERMINATING_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Cleans up after a topology whose owner never called `stop()`: when the node
 * process exits, or is told to terminate by SIGINT, SIGTERM or SIGHUP, it
 * signals every adopted child that is still running and removes the
 * topology's directory. `dispose()` unregisters it.
 *
 * @example
 * const guard = new ExitGuard('/tmp/rmq-x1y2z3', true)
 * guard.adopt(spawn('/usr/sbin/mosquitto', ['-c', conf]), 'SIGKILL')
 * guard.dispose()
 */
export class ExitGuard {
  readonly #directory: string
  readonly #removeDirectory: boolean
  readonly #children = new Map<ChildProcess, NodeJS.Signals>()
  readonly #onExit = (): void => this.#cleanUpNow()
  readonly #onSignal = (signal: NodeJS.Signals): void => {
    this.#cleanUpNow()
    this.dispose()
    // A signal listener replaces node's default of terminating. When no one
    // else listens, raise the signal again so the process still ends the way
    // its sender intended.
    if (process.listenerCount(signal) === 0) {
      process.kill(process.pid, signal)
    }
  }

  constructor(directory: string, removeDirectory: boolean) {
    this.#directory = directory
    this.#removeDirectory = removeDirectory
    process.on('exit', this.#onExit)
    for (const signal of TERMINATING_SIGNALS) {
      process.on(signal, this.#onSignal)
    }
  }

  /**
   * Signals `child` with `signal` if it still runs when the process exits.
   *
   * @example
   * guard.adopt(child, 'SIGQUIT')
   */
  adopt(child: ChildProcess, signal: NodeJS.Signals): void {
    this.#children.set(child, signal)
    child.once('exit', () => this.#children.delete(child))
  }

  /**
   * Unregisters the exit and signal hooks; call it once the topology has been
   * stopped.
   *
   * @example
   * guard.dispose()
   */
  dispose(): void {
    process.off('exit', this.#onExit)
    for (const signal of TERMINATING_SIGNALS) {
      process.off(signal, this.#onSignal)
    }
    this.#children.clear()
  }

  #cleanUpNow(): void {
    for (const [child, signal] of this.#children) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal)
      }
    }
    if (this.#removeDirectory) {
      rmSync(this.#directory, { recursive: true, force: true })
    }
  }
}
