import type { Logger } from '../../src/routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'

/** Mosquitto's count of messages it dropped (a queue or in-flight limit was reached), since it started. */
export const MOSQUITTO_DROPPED_TOPIC = '$SYS/broker/publish/messages/dropped'

/** A broker started dropping messages. */
export interface BrokerDropEvent {
  readonly broker: string
  /** Dropped since the pool first heard from the broker. */
  readonly dropped: number
  /** Dropped since the episode began. */
  readonly inEpisode: number
}

interface Broker {
  /** The broker's own counter at the last sample. */
  last: number | undefined
  /** Drops seen since the pool first heard from it. */
  dropped: number
  episode: { readonly since: number; count: number; lastIncrease: number } | undefined
}

/**
 * Follows what brokers say they dropped (Mosquitto publishes its counter
 * every `sys_interval`, 10 s by default, retained). A drop is a message a
 * broker accepted and then had no room for: the loss is the broker's, so
 * the pool makes it visible: a count per broker for metrics, an ERROR log
 * once per episode, and an episode state for the broker's health check. An
 * episode ends after `quietMs` without a new drop.
 *
 * @example
 * watch.sample('broker-1', message.payload)
 * watch.inEpisode('broker-1') // true while it keeps dropping
 */
export class BrokerDropWatch {
  readonly #log: Logger
  readonly #quietMs: number
  readonly #brokers = new Map<string, Broker>()
  readonly #started: TypedEvent<BrokerDropEvent>

  constructor(log: Logger, quietMs = 60_000, onListenerError?: (error: unknown) => void) {
    this.#log = log
    this.#quietMs = quietMs
    this.#started = new TypedEvent(onListenerError)
  }

  /** When a broker begins an episode of drops. */
  onDrops(listener: (event: BrokerDropEvent) => void): Disposer {
    return this.#started.on(listener)
  }

  /** A `$SYS/broker/publish/messages/dropped` value from `broker`. */
  sample(broker: string, payload: Buffer): void {
    const value = Number(payload.toString('utf8').trim())
    if (!Number.isSafeInteger(value) || value < 0) return
    let state = this.#brokers.get(broker)
    if (!state) this.#brokers.set(broker, (state = { last: undefined, dropped: 0, episode: undefined }))
    const previous = state.last
    state.last = value
    // The first value is the broker's history before the pool knew it; a smaller one means it restarted.
    const increase = previous === undefined ? 0 : value >= previous ? value - previous : value
    if (increase === 0) return
    const now = Date.now()
    state.dropped += increase
    if (state.episode && now - state.episode.lastIncrease <= this.#quietMs) {
      state.episode.count += increase
      state.episode.lastIncrease = now
      return
    }
    state.episode = { since: now, count: increase, lastIncrease: now }
    this.#log.error('a broker is dropping messages it accepted: a client queue or in-flight limit was reached (see "Mosquitto settings" in the README)', {
      broker, dropped: increase, droppedSinceWatched: state.dropped,
    })
    this.#started.emit({ broker, dropped: state.dropped, inEpisode: increase })
  }

  /** Messages `broker` dropped since the pool first heard from it. */
  dropped(broker: string): number {
    return this.#brokers.get(broker)?.dropped ?? 0
  }

  /** The episode under way at `broker`, if it dropped messages within `quietMs`. */
  episode(broker: string): { readonly since: number; readonly count: number } | undefined {
    const episode = this.#brokers.get(broker)?.episode
    return episode && Date.now() - episode.lastIncrease <= this.#quietMs ? episode : undefined
  }
}
