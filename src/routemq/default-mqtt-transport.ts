import { hostname } from 'node:os'
import { connect, type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { AckSequencer, type AckOrder } from './ack-sequencer.js'
import { ApplicationStateError } from './errors/application-state-error.js'
import { ConnectionFailedError } from './errors/connection-failed-error.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { SubscriptionRejectedError } from './errors/subscription-rejected-error.js'
import { TransportClosedError } from './errors/transport-closed-error.js'
import { silentLogger, type Logger } from './logger.js'
import { assertDeferredAcks, DEFERRED_ACK, sendPubcomp, sendPuback } from './mqtt-client-internals.js'
import type {
  InboundMessage, MessageProperties, MessageReceiver, MqttTransport, PublishOptions, QoS, Subscription,
} from './mqtt-transport.js'
import { redactUrl } from './redact-url.js'

/** TLS material for `mqtts://` and `wss://` brokers. */
export interface MqttTlsOptions {
  readonly ca?: string | Buffer | readonly (string | Buffer)[]
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  /** Default true. Turning it off accepts any certificate; only for tests. */
  readonly rejectUnauthorized?: boolean
}

/** Options of `DefaultMqttTransport`. */
export interface DefaultMqttTransportOptions {
  /** `mqtt://`, `mqtts://`, `ws://` or `wss://` URL of the broker. */
  readonly url: string
  /**
   * Client id. Default `routemq-<host>-<pid>`, unique per process. Give a
   * stable one of your own for persistent sessions (`clean: false`).
   */
  readonly clientId?: string
  readonly username?: string
  readonly password?: string
  /** Start a fresh session on every connect. Default true. */
  readonly clean?: boolean
  /** MQTT 5 only: how long the broker keeps a persistent session after a disconnect. Default 3600. */
  readonly sessionExpirySeconds?: number
  /** 5 (default) or 4 for MQTT 3.1.1. */
  readonly protocolVersion?: 4 | 5
  /** Default 30. */
  readonly keepaliveSeconds?: number
  /** How long the first connect may take before `connect()` rejects. Default 10 000. */
  readonly connectTimeoutMs?: number
  /** Pause between reconnect attempts after a lost connection. Default 1000. */
  readonly reconnectPeriodMs?: number
  readonly tls?: MqttTlsOptions
  /** Default `'arrival'`; see `AckOrder`. */
  readonly ackOrder?: AckOrder
  readonly logger?: Logger
}

const PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:'])

/**
 * The kernel's own transport: one broker over MQTT.js, which reconnects by
 * itself and resubscribes when the session was not kept. Acknowledges each
 * message only when the kernel settles it.
 *
 * @example
 * const transport = new DefaultMqttTransport({ url: 'mqtt://127.0.0.1:1883', clientId: 'billing-1', clean: false })
 */
export class DefaultMqttTransport implements MqttTransport {
  readonly #options: Required<Omit<DefaultMqttTransportOptions, 'username' | 'password' | 'tls'>> &
    Pick<DefaultMqttTransportOptions, 'username' | 'password' | 'tls'>
  readonly #label: string
  readonly #sequencer: AckSequencer
  #client: MqttClient | undefined
  #receiver: MessageReceiver | undefined
  #closed = false

  constructor(options: DefaultMqttTransportOptions, field = 'mqtt') {
    validate(options, field)
    this.#options = Object.freeze({
      clientId: `routemq-${hostname()}-${process.pid}`,
      clean: true,
      sessionExpirySeconds: 3600,
      protocolVersion: 5,
      keepaliveSeconds: 30,
      connectTimeoutMs: 10_000,
      reconnectPeriodMs: 1000,
      ackOrder: 'arrival',
      logger: silentLogger,
      ...definedOnly(options),
      url: options.url,
    })
    this.#label = redactUrl(options.url)
    this.#sequencer = new AckSequencer(this.#options.ackOrder)
  }

  get connected(): boolean {
    return this.#client?.connected ?? false
  }

  get persistentSession(): boolean {
    return !this.#options.clean
  }

  /** The broker as shown in logs and `ctx.broker`: its URL without credentials. */
  get label(): string {
    return this.#label
  }

  async connect(receiver: MessageReceiver): Promise<void> {
    if (this.#closed) throw new TransportClosedError('connect')
    if (this.#client) throw new ApplicationStateError('This transport is already connected; a transport serves one application.')
    this.#receiver = receiver
    const client = connect(this.#options.url, this.#clientOptions())
    assertDeferredAcks(client)
    this.#client = client
    client.handleMessage = (packet, done) => this.#onPublish(client, packet, done)
    client.on('close', () => {
      const dropped = this.#sequencer.reset()
      if (dropped > 0) this.#options.logger.warn('connection lost with messages unacknowledged', { broker: this.#label, dropped })
    })
    client.on('offline', () => this.#options.logger.warn('broker offline; reconnecting', { broker: this.#label }))
    client.on('reconnect', () => this.#options.logger.debug('reconnecting', { broker: this.#label }))
    try {
      await this.#firstConnect(client)
    } catch (error) {
      this.#client = undefined
      // The abandoned client may still report socket errors; nobody is left to hear them.
      client.on('error', noop)
      client.end(true)
      throw new ConnectionFailedError(this.#label, error)
    }
    client.on('error', (error) => this.#options.logger.error('mqtt client error', { broker: this.#label, error }))
    client.on('connect', () => this.#options.logger.info('connected', { broker: this.#label }))
    this.#options.logger.info('connected', { broker: this.#label })
  }

  async subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    const client = this.#require('subscribe')
    if (subscriptions.length === 0) return
    const granted = await client.subscribeAsync(Object.fromEntries(subscriptions.map((s) => [s.topic, { qos: s.qos }])))
    for (const grant of granted) {
      if (grant.qos === 128 || (grant.qos as number) > 2) throw new SubscriptionRejectedError(this.#label, grant.topic)
    }
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    const client = this.#require('unsubscribe')
    if (topics.length > 0) await client.unsubscribeAsync([...topics])
  }

  async publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    const client = this.#require('publish')
    await client.publishAsync(topic, typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), {
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
      ...(options.properties && this.#options.protocolVersion === 5 ? { properties: options.properties as never } : {}),
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const client = this.#client
    this.#client = undefined
    if (client) await client.endAsync()
  }

  #require(operation: string): MqttClient {
    if (this.#closed || !this.#client) throw new TransportClosedError(operation)
    return this.#client
  }

  #clientOptions(): IClientOptions {
    const o = this.#options
    const persistent = !o.clean && o.protocolVersion === 5
    return {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      clean: o.clean,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: o.reconnectPeriodMs,
      ...(persistent ? { properties: { sessionExpiryInterval: o.sessionExpirySeconds } } : {}),
      ...(o.tls
        ? { ca: o.tls.ca as never, cert: o.tls.cert, key: o.tls.key, rejectUnauthorized: o.tls.rejectUnauthorized ?? true }
        : {}),
    }
  }

  #firstConnect(client: MqttClient): Promise<void> {
    return new Promise((resolve, reject) => {
      let lastError: unknown
      const finish = (error?: unknown): void => {
        clearTimeout(timer)
        client.off('connect', onConnect)
        client.off('error', onError)
        client.off('close', onClose)
        if (error === undefined) resolve()
        else reject(error)
      }
      const onConnect = (): void => finish()
      const onError = (error: Error): void => {
        // Refused logins and bad certificates will not heal by retrying.
        lastError = error
        if (!isRetryable(error)) finish(error)
      }
      const onClose = (): void => {
        lastError ??= new Error('connection closed before CONNACK')
      }
      const timer = setTimeout(
        () => finish(lastError ?? new Error(`no CONNACK within ${this.#options.connectTimeoutMs} ms`)),
        this.#options.connectTimeoutMs,
      )
      client.on('connect', onConnect)
      client.on('error', onError)
      client.on('close', onClose)
    })
  }

  #onPublish(client: MqttClient, packet: IPublishPacket, done: (error?: Error) => void): void {
    const receiver = this.#receiver!
    const qos = packet.qos as QoS
    const messageId = packet.messageId
    let settle: (acknowledge: boolean) => void
    if (qos === 0 || messageId === undefined) {
      settle = noop
    } else {
      const track = this.#sequencer.track(qos === 1 ? () => sendPuback(client, messageId) : () => sendPubcomp(client, messageId))
      let settled = false
      settle = (acknowledge) => {
        if (settled) return
        settled = true
        track(acknowledge)
      }
    }
    const message: InboundMessage = {
      topic: packet.topic,
      payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
      qos,
      retain: packet.retain,
      dup: packet.dup,
      properties: packet.properties as MessageProperties | undefined,
      broker: this.#label,
      settle,
    }
    const proceed = qos === 0 ? () => done() : () => done(DEFERRED_ACK)
    let pressure: void | Promise<void> = undefined
    try {
      pressure = receiver(message)
    } catch (error) {
      this.#options.logger.error('message receiver threw', { topic: packet.topic, error })
    }
    if (pressure) pressure.then(proceed, proceed)
    else proceed()
  }
}

function noop(): void {}

function isRetryable(error: Error & { code?: unknown }): boolean {
  return typeof error.code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'].includes(error.code)
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>
}

function validate(options: DefaultMqttTransportOptions, field: string): void {
  if (!options || typeof options !== 'object') throw new InvalidOptionError(field, 'give an object such as { url: "mqtt://127.0.0.1:1883" }')
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    throw new InvalidOptionError(`${field}.url`, 'must be a URL such as mqtt://broker:1883')
  }
  if (!PROTOCOLS.has(url.protocol)) {
    throw new InvalidOptionError(`${field}.url`, `protocol "${url.protocol}" is not supported; use mqtt://, mqtts://, ws:// or wss://`)
  }
  if (options.clientId !== undefined && (typeof options.clientId !== 'string' || options.clientId.length === 0 || options.clientId.length > 65535)) {
    throw new InvalidOptionError(`${field}.clientId`, 'must be a non-empty string')
  }
  if (options.clean === false && options.clientId === undefined) {
    throw new InvalidOptionError(`${field}.clientId`, 'a persistent session (clean: false) needs a stable clientId, the same on every start of this instance')
  }
  if (options.protocolVersion !== undefined && options.protocolVersion !== 4 && options.protocolVersion !== 5) {
    throw new InvalidOptionError(`${field}.protocolVersion`, 'must be 4 (MQTT 3.1.1) or 5')
  }
  positiveInteger(options.keepaliveSeconds, `${field}.keepaliveSeconds`, 0)
  positiveInteger(options.connectTimeoutMs, `${field}.connectTimeoutMs`, 1)
  positiveInteger(options.reconnectPeriodMs, `${field}.reconnectPeriodMs`, 1)
  positiveInteger(options.sessionExpirySeconds, `${field}.sessionExpirySeconds`, 0)
  if (options.ackOrder !== undefined && options.ackOrder !== 'arrival' && options.ackOrder !== 'completion') {
    throw new InvalidOptionError(`${field}.ackOrder`, "must be 'arrival' or 'completion'")
  }
}

function positiveInteger(value: number | undefined, field: string, min: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw new InvalidOptionError(field, `must be a whole number of at least ${min}`)
  }
}
