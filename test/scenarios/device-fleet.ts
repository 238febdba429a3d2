import { connect, type MqttClient } from 'mqtt'

/** How the simulated devices behave. */
export interface DeviceFleetOptions {
  /** Where devices connect: the balancer's MQTT listener, or a list to pick from at random on each connection. */
  readonly urls: readonly string[]
  readonly devices: number
  /** QoS 1 readings per second per device. */
  readonly readingsPerSecond: number
  /** Each device drops its connection and makes a new one (new client id, so the balancer places it afresh) every this many ms, give or take half. */
  readonly churnMs: number
  /**
   * Every this many ms each device sends a ping (0: none). A pong within `replyWaitMs` is on time, a later one late; a ping
   * left unanswered on a connection that stayed open at least `replyWaitMs` after it is missing (the device waited
   * and the reply never reached it), one whose connection closed sooner is not counted.
   */
  readonly pingEveryMs: number
  readonly replyWaitMs: number
  /** MQTT version of the devices. Default 4 (most devices speak 3.1.1). */
  readonly protocolVersion?: 4 | 5
  readonly prefix?: string
}

/** What the devices saw. */
export interface FleetCounts {
  /** Readings a broker acknowledged (PUBACK), by device. */
  readonly acknowledged: ReadonlyMap<string, ReadonlySet<number>>
  readonly acknowledgedTotal: number
  /** Readings published whose PUBACK never came (the connection went first); not counted as acknowledged. */
  readonly unacknowledged: number
  /** Pings answered, or left unanswered on a connection that stayed open for the whole reply window. */
  readonly repliesExpected: number
  /** Of those, answered after the reply window. */
  readonly repliesLate: number
  /** Of those, never answered. */
  readonly repliesMissing: number
  readonly connections: number
}

interface Ping {
  readonly id: string
  readonly client: MqttClient
  readonly sentAt: number
}

/**
 * Simulated devices behind a balancer: each publishes QoS 1 readings at a
 * steady rate, drops and remakes its connection every so often (the balancer
 * may place it on another broker), reconnects at once when its broker goes
 * away, and pings the app, counting pongs. Only readings a broker
 * acknowledged count; the app must have stored every one of them.
 *
 * @example
 * const fleet = new DeviceFleet({ urls: [balancer], devices: 60, readingsPerSecond: 4, churnMs: 10_000, pingEveryMs: 5000, replyWaitMs: 5000 })
 * await fleet.start(); ...; const counts = await fleet.stop()
 */
export class DeviceFleet {
  readonly #options: DeviceFleetOptions
  readonly #acknowledged = new Map<string, Set<number>>()
  readonly #devices: Device[] = []
  #acknowledgedTotal = 0
  #unacknowledged = 0
  #repliesExpected = 0
  #repliesLate = 0
  #repliesMissing = 0
  #connections = 0

  constructor(options: DeviceFleetOptions) {
    this.#options = options
  }

  async start(): Promise<void> {
    for (let n = 0; n < this.#options.devices; n++) {
      const name = `${this.#options.prefix ?? 'dev'}-${n}`
      this.#acknowledged.set(name, new Set())
      this.#devices.push(new Device(name, this.#options, {
        acknowledged: (seq) => {
          this.#acknowledged.get(name)!.add(seq)
          this.#acknowledgedTotal++
        },
        unacknowledged: () => this.#unacknowledged++,
        reply: (outcome) => {
          this.#repliesExpected++
          if (outcome === 'late') this.#repliesLate++
          if (outcome === 'missing') this.#repliesMissing++
        },
        connected: () => this.#connections++,
      }))
    }
    await Promise.all(this.#devices.map((device) => device.start()))
  }

  get acknowledgedTotal(): number {
    return this.#acknowledgedTotal
  }

  /** Stops publishing, lets what is in flight be acknowledged, and disconnects. */
  async stop(): Promise<FleetCounts> {
    await Promise.all(this.#devices.map((device) => device.stop()))
    return {
      acknowledged: this.#acknowledged,
      acknowledgedTotal: this.#acknowledgedTotal,
      unacknowledged: this.#unacknowledged,
      repliesExpected: this.#repliesExpected,
      repliesLate: this.#repliesLate,
      repliesMissing: this.#repliesMissing,
      connections: this.#connections,
    }
  }
}

interface DeviceEvents {
  acknowledged(seq: number): void
  unacknowledged(): void
  reply(outcome: 'on-time' | 'late' | 'missing'): void
  connected(): void
}

class Device {
  readonly #name: string
  readonly #options: DeviceFleetOptions
  readonly #events: DeviceEvents
  readonly #pings = new Map<string, Ping>()
  #client: MqttClient | undefined
  #generation = 0
  #seq = 0
  #pingSeq = 0
  #timers: NodeJS.Timeout[] = []
  #stopped = false
  readonly #closing = new Set<Promise<void>>()

  constructor(name: string, options: DeviceFleetOptions, events: DeviceEvents) {
    this.#name = name
    this.#options = options
    this.#events = events
  }

  async start(): Promise<void> {
    this.#client = await this.#connect()
    const period = 1000 / this.#options.readingsPerSecond
    // Spread the devices' ticks over the period.
    const offset = Math.random() * period
    this.#timers.push(setTimeout(() => this.#timers.push(setInterval(() => this.#publish(), period)), offset))
    if (this.#options.pingEveryMs > 0) {
      this.#timers.push(setTimeout(() => this.#timers.push(setInterval(() => this.#ping(), this.#options.pingEveryMs)), Math.random() * this.#options.pingEveryMs))
    }
    this.#scheduleChurn()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const timer of this.#timers) {
      clearTimeout(timer)
      clearInterval(timer)
    }
    // Replies to the last pings may still be on their way.
    await new Promise((resolve) => setTimeout(resolve, this.#options.replyWaitMs))
    await Promise.all(this.#closing)
    const client = this.#client
    if (client) await this.#retire(client)
  }

  #scheduleChurn(): void {
    const delay = this.#options.churnMs * (0.5 + Math.random())
    const timer = setTimeout(() => {
      if (this.#stopped) return
      void this.#connect().then((next) => {
        const previous = this.#client
        this.#client = next
        if (previous) {
          const closing = this.#retire(previous)
          this.#closing.add(closing)
          void closing.finally(() => this.#closing.delete(closing))
        }
        if (!this.#stopped) this.#scheduleChurn()
      }, () => this.#scheduleChurn())
    }, delay)
    this.#timers.push(timer)
  }

  #connect(): Promise<MqttClient> {
    const url = this.#options.urls[Math.floor(Math.random() * this.#options.urls.length)]!
    const client = connect(url, {
      clientId: `${this.#name}-${++this.#generation}`,
      clean: true,
      protocolVersion: this.#options.protocolVersion ?? 4,
      keepalive: 10,
      reconnectPeriod: 250,
      connectTimeout: 5000,
    })
    client.on('error', () => undefined)
    client.on('connect', () => {
      this.#events.connected()
      client.subscribe(`devices/${this.#name}/pong`, { qos: 1 })
    })
    client.on('close', () => {
      // Unanswered pings of this connection: missing if the device waited the reply window, else not counted.
      const now = Date.now()
      for (const [id, ping] of this.#pings) {
        if (ping.client !== client) continue
        this.#pings.delete(id)
        if (now - ping.sentAt >= this.#options.replyWaitMs) this.#events.reply('missing')
      }
    })
    client.on('message', (_topic, payload) => {
      const id = payload.toString()
      const ping = this.#pings.get(id)
      if (!ping) return
      this.#pings.delete(id)
      this.#events.reply(Date.now() - ping.sentAt <= this.#options.replyWaitMs ? 'on-time' : 'late')
    })
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client))
      setTimeout(() => {
        if (!client.connected) {
          client.end(true)
          reject(new Error(`${this.#name} could not connect to ${url}`))
        }
      }, 10_000)
    })
  }

  /** Ends a connection after what it has in flight was acknowledged (or 5 s passed). */
  async #retire(client: MqttClient): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        client.end(true)
        resolve()
      }, 5000)
      client.end(false, {}, () => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  #publish(): void {
    const client = this.#client
    if (!client || this.#stopped) return
    const seq = ++this.#seq
    // conn: which of the device's connections sent it; one connection's readings reach the app in order.
    const conn = Number(client.options.clientId!.slice(this.#name.length + 1))
    client.publish(`devices/${this.#name}/telemetry`, JSON.stringify({ seq, sentAt: Date.now(), conn }), { qos: 1 }, (error) => {
      if (error) this.#events.unacknowledged()
      else this.#events.acknowledged(seq)
    })
  }

  #ping(): void {
    const client = this.#client
    if (!client?.connected || this.#stopped) return
    const id = `${this.#name}:${++this.#pingSeq}`
    this.#pings.set(id, { id, client, sentAt: Date.now() })
    client.publish(`devices/${this.#name}/ping`, id, { qos: 1 }, (error) => {
      // A ping no broker acknowledged expects no pong.
      if (error) this.#pings.delete(id)
    })
  }
}
