import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

const TERMINATING_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Cleans up after a topology whose owner never called `stop()`: when the node
 * process exits, it signals every adopted child that is still running and
 * removes the topology's directory. `dispose()` unregisters it.
 *
 * SIGINT, SIGTERM and SIGHUP belong to the application when it listens for
 * them itself: the guard then does nothing, so the application's graceful
 * shutdown can still use the topology, and the exit hook cleans up once the
 * process exits. Only when no one else listens does the guard clean up every
 * live topology and raise the signal again, so the process still dies the
 * way the sender intended (exit status 130, 143 or 129 in a shell).
 *
 * All guards share one exit listener and one listener per signal, so any
 * number of topologies adds at most four process listeners.
 *
 * @example
 * const guard = new ExitGuard('/tmp/rmq-x1y2z3', true)
 * guard.adopt(spawn('/usr/sbin/mosquitto', ['-c', conf]), 'SIGKILL')
 * guard.dispose()
 */
export class ExitGuard {
  static readonly #live = new Set<ExitGuard>()

  static readonly #onExit = (): void => {
    for (const guard of ExitGuard.#live) {
      guard.#cleanUpNow()
    }
  }

  static readonly #onSignal = (signal: NodeJS.Signals): void => {
    // Any other listener means the application handles this signal and owns
    // shutdown; cleaning up now would pull the servers out from under its
    // graceful stop. The exit hook still runs when the process ends.
    if (process.listeners(signal).some((listener) => listener !== ExitGuard.#onSignal)) {
      return
    }
    for (const guard of [...ExitGuard.#live]) {
      guard.#cleanUpNow()
      guard.dispose()
    }
    // Disposing the last guard removed this listener, which restores node's
    // default action, so the raised signal terminates the process.
    process.kill(process.pid, signal)
  }

  readonly #directory: string
  readonly #removeDirectory: boolean
  readonly #children = new Map<ChildProcess, NodeJS.Signals>()

  constructor(directory: string, removeDirectory: boolean) {
    this.#directory = directory
    this.#removeDirectory = removeDirectory
    if (ExitGuard.#live.size === 0) {
      process.on('exit', ExitGuard.#onExit)
      for (const signal of TERMINATING_SIGNALS) {
        // First in line, so the listener still sees an application's
        // `process.once(signal, ...)` before that one removes itself.
        process.prependListener(signal, ExitGuard.#onSignal)
      }
    }
    ExitGuard.#live.add(this)
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
   * Unregisters this guard; the shared exit and signal hooks go with the last
   * one. Call it once the topology has been stopped.
   *
   * @example
   * guard.dispose()
   */
  dispose(): void {
    this.#children.clear()
    if (!ExitGuard.#live.delete(this) || ExitGuard.#live.size > 0) {
      return
    }
    process.off('exit', ExitGuard.#onExit)
    for (const signal of TERMINATING_SIGNALS) {
      process.off(signal, ExitGuard.#onSignal)
    }
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
