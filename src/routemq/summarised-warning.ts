import type { LogFields, Logger } from './logger.js'

/** Options of `SummarisedWarning`. */
export interface SummarisedWarningOptions {
  /** Longest time between a counted occurrence and the line that reports it while an episode goes on. Default 10 s. */
  readonly intervalMs?: number
  /** Level of the first line and of the summaries. Default `'warn'`. */
  readonly level?: 'info' | 'warn' | 'error'
}

interface Episode {
  /** Occurrences since the last line written. */
  count: number
  /** When the last line was written. */
  since: number
  last: LogFields | undefined
  timer: NodeJS.Timeout
}

/**
 * A warning that comes in storms (a QoS 0 flood dropped, every query of a
 * stopping primary failing, a broker refusing each reconnect): one line per
 * episode. The first occurrence is logged at once; the rest are counted and
 * reported as one line that says how many there were, every `intervalMs`
 * while they go on and when the episode ends: at `end()` (on recovery), or
 * after a whole `intervalMs` without one. Each `key` (a server's id) has its
 * own episode.
 *
 * @example
 * const lost = new SummarisedWarning(log, 'a query lost its connection to the primary', { intervalMs: 10_000 })
 * lost.record({ primary: 'db1', error })  // logged
 * lost.record({ primary: 'db1', error })  // counted
 * lost.end()                              // 'a query lost its connection to the primary (1 more in 0.3 s)'
 */
export class SummarisedWarning {
  readonly #log: Logger
  readonly #message: string
  readonly #intervalMs: number
  readonly #level: 'info' | 'warn' | 'error'
  readonly #episodes = new Map<string, Episode>()

  constructor(log: Logger, message: string, options: SummarisedWarningOptions = {}) {
    this.#log = log
    this.#message = message
    this.#intervalMs = options.intervalMs ?? 10_000
    this.#level = options.level ?? 'warn'
  }

  /**
   * Counts one occurrence; `fields` describe it (the last ones go with the
   * summary). Returns whether it was logged on its own line, the first of
   * its episode.
   */
  record(fields: LogFields, key = ''): boolean {
    const episode = this.#episodes.get(key)
    if (episode) {
      episode.count++
      episode.last = fields
      return false
    }
    this.#log[this.#level](this.#message, fields)
    this.#episodes.set(key, { count: 0, since: Date.now(), last: undefined, timer: this.#schedule(key) })
    return true
  }

  /** Whether an episode of `key` is going on: its first occurrence was logged and it has not ended. */
  ongoing(key = ''): boolean {
    return this.#episodes.has(key)
  }

  /** The episode of `key` is over: what was counted since the last line is reported, and the next occurrence is logged at once. */
  end(key = ''): void {
    const episode = this.#episodes.get(key)
    if (!episode) return
    clearTimeout(episode.timer)
    this.#episodes.delete(key)
    this.#summarise(episode)
  }

  /** Ends every episode, reporting what each counted (on close). */
  endAll(): void {
    for (const key of [...this.#episodes.keys()]) this.end(key)
  }

  #schedule(key: string): NodeJS.Timeout {
    const timer = setTimeout(() => this.#tick(key), this.#intervalMs)
    timer.unref()
    return timer
  }

  #tick(key: string): void {
    const episode = this.#episodes.get(key)
    if (!episode) return
    // A whole interval without one: the storm is over, and the next occurrence is news again.
    if (episode.count === 0) {
      this.#episodes.delete(key)
      return
    }
    this.#summarise(episode)
    episode.count = 0
    episode.last = undefined
    episode.since = Date.now()
    episode.timer = this.#schedule(key)
  }

  #summarise(episode: Episode): void {
    if (episode.count === 0) return
    const seconds = Math.round((Date.now() - episode.since) / 100) / 10
    this.#log[this.#level](`${this.#message} (${episode.count} more in ${seconds} s)`, { ...episode.last, count: episode.count })
  }
}
