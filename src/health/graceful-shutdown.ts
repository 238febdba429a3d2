import type { Logger } from '../routemq/plugin-api.js'
import { checkOptions } from '../routemq/plugin-api.js'
import { GRACEFUL_SHUTDOWN_OPTIONS_SHAPE } from './graceful-shutdown-options-shape.js'

/** Options of graceful shutdown on a signal. */
export interface GracefulShutdownOptions {
  /** Default `['SIGTERM', 'SIGINT']`. */
  readonly signals?: readonly NodeJS.Signals[]
  /**
   * Between failing readiness and stopping the app, so that balancers and
   * Kubernetes endpoints stop sending work first; messages keep being handled
   * meanwhile. Default 5000 ms.
   */
  readonly drainDelayMs?: number
  /** End the process once the app stopped (exit code 0, or 1 if stopping failed). Default true. */
  readonly exit?: boolean
}

/** What a shutdown does, in order; supplied by `HealthModule`. */
export interface ShutdownSteps {
  /** Fail readiness. */
  readonly beginShutdown: () => void
  /** Stop the application: stop taking messages, finish those in flight, close the transport and modules. */
  readonly stop: () => Promise<unknown>
  readonly logger: Logger
}

/**
 * Turns SIGTERM/SIGINT into an orderly stop: readiness fails at once, the app
 * goes on for `drainDelayMs`, then stops (finishing messages in flight) and
 * the process exits. A second signal while stopping exits at once with 1.
 *
 * @example
 * const shutdown = new GracefulShutdown({ drainDelayMs: 10_000 }, { beginShutdown, stop: () => app.stop(), logger })
 * shutdown.install()
 */
export class GracefulShutdown {
  readonly #signals: readonly NodeJS.Signals[]
  readonly #drainDelayMs: number
  readonly #exit: boolean
  readonly #steps: ShutdownSteps
  #running: Promise<void> | undefined
  /** True while a shutdown is under way: the handlers stay, so that a second signal exits at once. */
  #stopping = false
  #installed = false

  constructor(options: GracefulShutdownOptions, steps: ShutdownSteps) {
    checkOptions(options, GRACEFUL_SHUTDOWN_OPTIONS_SHAPE, 'health.shutdown')
    const { signals = ['SIGTERM', 'SIGINT'], drainDelayMs = 5000, exit = true } = options
    this.#signals = Object.freeze([...signals])
    this.#drainDelayMs = drainDelayMs
    this.#exit = exit
    this.#steps = steps
  }

  install(): void {
    if (this.#installed) return
    this.#installed = true
    for (const signal of this.#signals) process.on(signal, this.#onSignal)
  }

  /** Removes the signal handlers, unless a shutdown is under way (a second signal must still exit at once). */
  uninstall(): void {
    if (!this.#installed || this.#stopping) return
    this.#installed = false
    for (const signal of this.#signals) process.off(signal, this.#onSignal)
  }

  /** Runs the shutdown as a signal would (once; later calls share it). */
  shutdown(reason = 'shutdown requested'): Promise<void> {
    this.#running ??= this.#run(reason)
    return this.#running
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    if (this.#stopping) {
      this.#steps.logger.warn(`${signal} again while shutting down: exiting now`)
      if (this.#exit) process.exit(1)
      return
    }
    void this.shutdown(signal)
  }

  async #run(reason: string): Promise<void> {
    const { logger } = this.#steps
    this.#stopping = true
    this.#steps.beginShutdown()
    logger.info(`${reason}: readiness now fails; stopping in ${this.#drainDelayMs} ms`)
    if (this.#drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.#drainDelayMs))
    let code = 0
    try {
      await this.#steps.stop()
    } catch (error) {
      code = 1
      logger.error('stopping the application failed', { error })
    }
    if (this.#exit) process.exit(code)
    this.#stopping = false
    this.uninstall()
  }
}
