/**
 * When acknowledgements go out:
 * - `'arrival'` (default): in the order the messages arrived, as MQTT
 *   requires of a client (MQTT 3.1.1 and 5, section 4.6); a slow message holds
 *   back the acknowledgements of later ones on the same connection;
 * - `'completion'`: as soon as each message settles. Brokers such as Mosquitto,
 *   EMQX and HiveMQ accept it, and a slow handler then delays nobody else.
 */
export type AckOrder = 'arrival' | 'completion'

interface Slot {
  settled: boolean
  acknowledge: boolean
  readonly send: () => void
}

/**
 * Holds the acknowledgements of one connection's unsettled messages and sends
 * each when allowed. When the connection is lost, `reset()` forgets them all:
 * an acknowledgement belongs to the connection that delivered the message,
 * and a persistent session redelivers it on the next one.
 *
 * @example
 * const settle = sequencer.track(() => sendPuback(id))
 * // ... handler done
 * settle(true)
 */
export class AckSequencer {
  readonly #order: AckOrder
  #slots: Slot[] = []
  #head = 0
  #generation = 0
  #unsettled = 0
  #withheld = 0
  #idle: (() => void)[] = []

  constructor(order: AckOrder = 'arrival') {
    this.#order = order
  }

  /**
   * Registers a message that awaits acknowledgement. The returned function
   * settles it; it returns false when the message's connection is already gone.
   */
  track(send: () => void): (acknowledge: boolean) => boolean {
    const generation = this.#generation
    this.#unsettled++
    if (this.#order === 'completion') {
      return (acknowledge) => {
        if (generation !== this.#generation) return false
        if (acknowledge) send()
        else this.#withheld++
        this.#settled()
        return true
      }
    }
    const slot: Slot = { settled: false, acknowledge: false, send }
    this.#slots.push(slot)
    return (acknowledge) => {
      if (generation !== this.#generation) return false
      slot.settled = true
      slot.acknowledge = acknowledge
      if (!acknowledge) this.#withheld++
      this.#flush()
      this.#settled()
      return true
    }
  }

  /** Forgets every pending acknowledgement; returns how many there were. */
  reset(): number {
    const dropped = this.#unsettled
    this.#generation++
    this.#slots = []
    this.#head = 0
    this.#unsettled = 0
    this.#wake()
    return dropped
  }

  /**
   * Messages settled without acknowledgement since the sequencer was made
   * (left for the session to deliver again). A session that still owes them
   * must not be ended.
   */
  get withheld(): number {
    return this.#withheld
  }

  /** Messages tracked and not yet settled. */
  get unsettled(): number {
    return this.#unsettled
  }

  /** Resolves once every tracked message has settled (or the connection was lost). */
  whenIdle(): Promise<void> {
    if (this.#unsettled === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #settled(): void {
    this.#unsettled--
    if (this.#unsettled === 0) this.#wake()
  }

  #wake(): void {
    const idle = this.#idle
    this.#idle = []
    for (const resolve of idle) resolve()
  }

  /** Acknowledgements held back behind an earlier unsettled message ('arrival' order). */
  get pending(): number {
    return this.#slots.length - this.#head
  }

  #flush(): void {
    const slots = this.#slots
    while (this.#head < slots.length && slots[this.#head]!.settled) {
      const slot = slots[this.#head++]!
      if (slot.acknowledge) slot.send()
    }
    if (this.#head === slots.length) {
      this.#slots = []
      this.#head = 0
    } else if (this.#head > 1024 && this.#head * 2 > slots.length) {
      this.#slots = slots.slice(this.#head)
      this.#head = 0
    }
  }
}
