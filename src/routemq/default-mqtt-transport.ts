import { hostname } from 'node:os'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import type { AckOrder } from './ack-sequencer.js'
import { awaitConnack } from './connack.js'
import { DEFAULT_MQTT_TRANSPORT_OPTIONS_SHAPE } from './default-mqtt-transport-options-shape.js'
import { receiveWithDeferredAcks } from './deferred-ack-receiver.js'
import { verifyDeferredAcks } from './deferred-ack-self-check.js'
import { ApplicationStateError } from './errors/application-state-error.js'
import { ConnectionFailedError } from './errors/connection-failed-error.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { TransportClosedError } from './errors/transport-closed-error.js'
import { safeLogger, silentLogger, type Logger } from './logger.js'
import type { MessageReceiver, MqttTransport, PublishOptions, Subscription } from './mqtt-transport.js'
import { checkOptions } from './option-shape.js'
import { outgoingDrained } from './outgoing-drained.js'
import { assertPublishable } from './publish-check.js'
import { refuseMisreadUserInfo } from './misread-user-info.js'
import { redactUrl } from './redact-url.js'
import { subscribeAll } from './subscription-grants.js'
import { overlappingFilters } from './topic-overlap.js'

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
  /**
   * MQTT 5: the most unacknowledged QoS 1 and 2 messages the broker may send
   * at once (the broker's own limit, e.g. Mosquitto's `max_inflight_messages`,
   * applies too). Default: the broker decides.
   */
  readonly receiveMaximum?: number
  /** How long `close()` waits for the broker to acknowledge publishes still in flight. Default 5000. */
  readonly closeTimeoutMs?: number
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
  readonly #options: Required<Omit<DefaultMqttTransportOptions, 'username' | 'password' | 'tls' | 'receiveMaximum'>> &
    Pick<DefaultMqttTransportOptions, 'username' | 'password' | 'tls' | 'receiveMaximum'>
  readonly #log: Logger
  readonly #label: string
  #client: MqttClient | undefined
  #closed = false
  /** Rejecters of publishes the broker has not acknowledged yet. */
  readonly #unacknowledged = new Set<(error: Error) => void>()

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
      closeTimeoutMs: 5000,
      logger: silentLogger,
      ...definedOnly(options),
      url: options.url,
    })
    this.#log = safeLogger(this.#options.logger)
    this.#label = redactUrl(options.url)
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
    await verifyDeferredAcks()
    if (this.#closed) throw new TransportClosedError('connect')
    if (this.#client) throw new ApplicationStateError('This transport is already connected; a transport serves one application.')
    const client = connect(this.#options.url, this.#clientOptions())
    this.#client = client
    receiveWithDeferredAcks(client, { receiver, ackOrder: this.#options.ackOrder, broker: this.#label, log: this.#log })
    // Always listened to: an 'error' without a listener would crash the process.
    client.on('error', (error) => {
      if (this.connected) this.#log.error('mqtt client error', { broker: this.#label, error })
      else this.#log.debug('mqtt client error while disconnected', { broker: this.#label, error })
    })
    client.on('offline', () => this.#log.warn('broker offline; reconnecting', { broker: this.#label }))
    client.on('reconnect', () => this.#log.debug('reconnecting', { broker: this.#label }))
    try {
      // MQTT.js retries by itself until the timeout; a refused login or a bad certificate will not heal.
      await awaitConnack(client, { timeoutMs: this.#options.connectTimeoutMs, failures: 'retry' })
    } catch (error) {
      this.#client = undefined
      client.end(true)
      throw new ConnectionFailedError(this.#label, error)
    }
    client.on('connect', () => this.#log.info('connected', { broker: this.#label }))
    this.#log.info('connected', { broker: this.#label })
  }

  async subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    const client = this.#require('subscribe')
    await subscribeAll(client, this.#label, subscriptions, this.#options.protocolVersion)
    if (this.#options.protocolVersion === 5) return
    const overlaps = overlappingFilters(subscriptions.map((s) => s.topic))
    if (overlaps.length > 0) {
      this.#log.warn('overlapping route filters under MQTT 3.1.1: a message matching several may be handled more than once; use MQTT 5', {
        overlaps: overlaps.map(([x, y]) => `${x} ~ ${y}`).slice(0, 10),
      })
    }
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    const client = this.#require('unsubscribe')
    if (topics.length > 0) await client.unsubscribeAsync([...topics])
  }

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    const client = this.#require('publish')
    return new Promise<void>((resolve, reject) => {
      assertPublishable(topic, payload, options)
      // MQTT.js keeps an unacknowledged publish pending forever once ended; close() rejects it instead.
      this.#unacknowledged.add(reject)
      client
        .publishAsync(topic, typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), {
          qos: options.qos ?? 0,
          retain: options.retain ?? false,
          ...(options.properties && this.#options.protocolVersion === 5 ? { properties: options.properties as never } : {}),
        })
        .then(() => resolve(), reject)
        .finally(() => this.#unacknowledged.delete(reject))
    })
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const client = this.#client
    this.#client = undefined
    if (!client) return
    // MQTT.js's graceful end waits for every publish in flight to be
    // acknowledged, forever if the broker is gone; give it a bounded grace.
    const settled = client.connected && (await outgoingDrained(client, this.#options.closeTimeoutMs))
    await client.endAsync(!settled)
    for (const reject of this.#unacknowledged) reject(new TransportClosedError('complete this publish, which the broker never acknowledged'))
    this.#unacknowledged.clear()
  }

  #require(operation: string): MqttClient {
    if (this.#closed || !this.#client) throw new TransportClosedError(operation)
    return this.#client
  }

  #clientOptions(): IClientOptions {
    const o = this.#options
    const persistent = !o.clean && o.protocolVersion === 5
    const properties = {
      ...(persistent ? { sessionExpiryInterval: o.sessionExpirySeconds } : {}),
      ...(o.receiveMaximum !== undefined && o.protocolVersion === 5 ? { receiveMaximum: o.receiveMaximum } : {}),
    }
    return {
      clientId: o.clientId,
      username: o.username,
      password: o.password,
      clean: o.clean,
      protocolVersion: o.protocolVersion,
      keepalive: o.keepaliveSeconds,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: o.reconnectPeriodMs,
      ...(Object.keys(properties).length > 0 ? { properties } : {}),
      ...(o.tls
        ? { ca: o.tls.ca as never, cert: o.tls.cert, key: o.tls.key, rejectUnauthorized: o.tls.rejectUnauthorized ?? true }
        : {}),
    }
  }
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>
}

function validate(options: DefaultMqttTransportOptions, field: string): void {
  if (!options || typeof options !== 'object') throw new InvalidOptionError(field, 'give an object such as { url: "mqtt://127.0.0.1:1883" }')
  checkOptions(options, DEFAULT_MQTT_TRANSPORT_OPTIONS_SHAPE, field)
  let url: URL
  try {
    url = new URL(options.url)
  } catch {
    throw new InvalidOptionError(`${field}.url`, 'must be a URL such as mqtt://broker:1883')
  }
  if (!PROTOCOLS.has(url.protocol)) {
    // 'localhost:1883' parses with 'localhost:' as its scheme: say what is missing rather than what was misread.
    throw new InvalidOptionError(`${field}.url`, String(options.url).includes('://')
      ? `protocol "${url.protocol}" is not supported; use mqtt://, mqtts://, ws:// or wss://`
      : `has no scheme ("${url.protocol}" was read as one); start it with mqtt://, mqtts://, ws:// or wss://, as in mqtt://localhost:1883`)
  }
  refuseMisreadUserInfo(url, `${field}.url`, { hint: 'or give it as the password option' })
  if (options.clean === false && options.clientId === undefined) {
    throw new InvalidOptionError(`${field}.clientId`, 'a persistent session (clean: false) needs a stable clientId, the same on every start of this instance')
  }
}
