import type { Logger } from '../../src/routemq/plugin-api.js'

/**
 * Backends kept out whatever their probes say (late acknowledgements, a
 * refused subscription, a failed failback, a redirect), for a time that
 * doubles with each offence up to `capMs`.
 *
 * @example
 * holdDown.hold(backend, 'its publishes are not acknowledged in time')
 * if (holdDown.isHeld(backend)) skip()
 */
export class HoldDown<B extends { readonly id: string }> {
  readonly #baseMs: number
  readonly #capMs: number
  readonly #log: Logger
  readonly #held = new Map<B, { until: number; count: number }>()

  constructor(baseMs: number, capMs: number, log: Logger) {
    this.#baseMs = baseMs
    this.#capMs = capMs
    this.#log = log
  }

  /** Holds `backend` out; returns for how long, in ms. */
  hold(backend: B, reason: string): number {
    const count = (this.#held.get(backend)?.count ?? 0) + 1
    const ms = Math.min(this.#capMs, this.#baseMs * 2 ** (count - 1))
    this.#held.set(backend, { until: Date.now() + ms, count })
    this.#log.warn('broker held out', { broker: backend.id, reason, ms })
    return ms
  }

  /** Forgets past offences (a timely acknowledgement). */
  forgive(backend: B): void {
    this.#held.delete(backend)
  }

  isHeld(backend: B): boolean {
    return (this.#held.get(backend)?.until ?? 0) > Date.now()
  }

  /** Those of `backends` held out now. */
  heldAmong(backends: readonly B[]): B[] {
    return backends.filter((backend) => this.isHeld(backend))
  }
}
