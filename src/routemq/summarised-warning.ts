import type { LogFields, Logger } from './logger.js'

/**
 * A warning that may fire thousands of times a second (a QoS 0 flood being
 * dropped): the first occurrence is logged at once, the rest are counted and
 * logged as one line per `intervalMs` that says how many there were.
 *
 * @example
 * const dropped = new SummarisedWarning(log, 'QoS 0 messages dropped: too many messages waiting', 10_000)
 * dropped.record({ topic, waiting })
 */
export class SummarisedWarning {
  readonly #log: Logger
  readonly #message: string
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | undefined
  #since = 0
  #last: LogFields | undefined

  constructor(log: Logger, message: string, intervalMs: number) {
    this.#log = log
    this.#message = message
    this.#intervalMs = intervalMs
  }

  /** Counts one occurrence; `fields` describe it (the last ones are logged with the summary). */
  record(fields: LogFields): void {
    if (this.#timer) {
      this.#since++
      this.#last = fields
      return
    }
    this.#log.warn(this.#message, fields)
    this.#timer = setTimeout(() => this.#flush(), this.#intervalMs)
    this.#timer.unref()
  }

  #flush(): void {
    this.#timer = undefined
    if (this.#since === 0) return
    const count = this.#since
    const last = this.#last
    this.#since = 0
    this.#last = undefined
    this.#log.warn(`${this.#message} (${count} more in the last ${this.#intervalMs / 1000} s)`, { ...last, count })
    // Still flooding: the next occurrence is counted, not logged on its own.
    this.#timer = setTimeout(() => this.#flush(), this.#intervalMs)
    this.#timer.unref()
  }
}
