import { connect, type IClientOptions, type IClientPublishOptions, type IDisconnectPacket, type MqttClient } from 'mqtt'
import { awaitConnack } from '../../src/routemq/transport-api.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { AckSequencer } from '../../src/routemq/plugin-api.js'
import { receiveWithDeferredAcks } from '../../src/routemq/transport-api.js'
import { outgoingDrained } from '../../src/routemq/transport-api.js'
import { subscribeAll } from '../../src/routemq/transport-api.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { MessageReceiver, PublishOptions, Subscription } from '../../src/routemq/plugin-api.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { clientOptions } from './mqtt-client-options.js'

/** The message a broker publishes for a connection that ends without a DISCONNECT (MQTT's will). */
export interface WillMessage {
  readonly topic: string
  readonly payload: string
  readonly retain: boolean
  /** MQTT 5: how long the broker waits for the session to come back before publishing it. */
  readonly delaySeconds: number
}

/** Options of `BrokerConnection.open`: the pool's session settings, for one broker. */
export interface BrokerConnectionOptions
  extends Pick<
    ResolvedBrokerPoolOptions,
    'clean' | 'sessionExpirySeconds' | 'protocolVersion' | 'keepaliveSeconds' | 'connectTimeoutMs' | 'ackOrder'
  > {
  readonly endpoint: BrokerEndpoint
  /** The session's client id. */
  readonly clientId: string
  readonly receiver: MessageReceiver
  readonly log: Logger
  readonly will?: WillMessage
  /** MQTT 5: the most unacknowledged QoS 1/2 messages the broker may send at once. */
  readonly receiveMaximum?: number
}

/**
 * The options of a pool session on `endpoint`: the pool's session settings,
 * the client id and, for persistent sessions, its will.
 *
 * @example
 * await BrokerConnection.open({ ...sessionOptions(options, endpoint, 'app-1-2', log, will), receiver })
 */
export function sessionOptions(
  options: ResolvedBrokerPoolOptions, endpoint: BrokerEndpoint, clientId: string, log: Logger, will: WillMessage | undefined,
): Omit<BrokerConnectionOptions, 'receiver'> {
  return {
    endpoint,
    clientId,
    clean: options.clean,
    sessionExpirySeconds: options.sessionExpirySeconds,
    protocolVersion: options.protocolVersion,
    keepaliveSeconds: options.keepaliveSeconds,
    connectTimeoutMs: options.connectTimeoutMs,
    ackOrder: options.ackOrder,
    receiveMaximum: options.receiveMaximum,
    log,
    ...(will ? { will } : {}),
  }
}

/** How long the pool's own publishes (presence, drain markers, probes of subscriptions) may wait for their PUBACK. */
const PUBLISH_NOW_TIMEOUT_MS = 10_000

/** MQTT 5 PUBACK reason code: the broker took the message, and no session subscribes to its topic. */
const NO_MATCHING_SUBSCRIBERS = 0x10

/** MQTT 5 reason codes of a server DISCONNECT that send the client elsewhere. */
const USE_ANOTHER_SERVER = 0x9c
const SERVER_MOVED = 0x9d
/** MQTT 5 reason code of a server DISCONNECT: another connection took the session over. */
const SESSION_TAKEN_OVER = 0x8e

/**
 * One MQTT.js connection to one broker, which never reconnects by itself:
 * when it is lost it says so once, and the pool decides what comes next.
 * Inbound messages are acknowledged only when the kernel settles them.
 *
 * @example
 * const connection = await BrokerConnection.open(options)
 * connection.onClose((reason) => failover(reason))
 */
export class BrokerConnection {
  readonly endpoint: BrokerEndpoint
  /** The session's client id. */
  readonly clientId: string
  /** Time from connect to CONNACK, in ms. */
  readonly connectMs: number
  /** The broker still had this client id's session (its subscriptions and queued messages). */
  readonly sessionPresent: boolean
  readonly #client: MqttClient
  readonly #inbound: AckSequencer
  readonly #closed = new TypedEvent<Error | undefined>()
  readonly #redirected = new TypedEvent<string>()
  #lost = false
  #reason: Error | undefined
  #takenOver = false
  readonly #options: BrokerConnectionOptions

  private constructor(options: BrokerConnectionOptions, client: MqttClient, inbound: AckSequencer, connectMs: number, sessionPresent: boolean) {
    const { endpoint, log } = options
    this.endpoint = endpoint
    this.clientId = options.clientId
    this.#options = options
    this.#client = client
    this.#inbound = inbound
    this.connectMs = connectMs
    this.sessionPresent = sessionPresent
    let lastError: Error | undefined
    client.on('error', (error) => {
      lastError = error
      log.debug('broker connection error', { broker: endpoint.id, error })
    })
    client.on('disconnect', (packet: IDisconnectPacket) => {
      if (packet.reasonCode === SESSION_TAKEN_OVER) this.#takenOver = true
      const reference = packet.properties?.serverReference
      if ((packet.reasonCode === USE_ANOTHER_SERVER || packet.reasonCode === SERVER_MOVED) && reference) {
        this.#redirected.emit(reference)
      }
    })
    client.on('close', () => {
      if (this.#lost) return
      this.#lost = true
      this.#reason = lastError
      client.end(true)
      this.#closed.emit(lastError)
    })
  }

  /** Connects and resolves on CONNACK; rejects (leaving nothing open) on refusal, error or timeout. */
  static async open(options: BrokerConnectionOptions): Promise<BrokerConnection> {
    const { endpoint } = options
    const client = connect(endpoint.url, { ...connectionClientOptions(options), manualConnect: true })
    const inbound = receiveWithDeferredAcks(client, { receiver: options.receiver, ackOrder: options.ackOrder, broker: endpoint.id, log: options.log })
    const started = performance.now()
    const connack = awaitConnack(client, { timeoutMs: options.connectTimeoutMs })
    try {
      // connect() throws at once on a CONNECT MQTT.js cannot write; the wait must not then reject unheard.
      client.connect()
      const { sessionPresent } = await connack
      return new BrokerConnection(options, client, inbound, performance.now() - started, sessionPresent)
    } catch (error) {
      connack.catch(noop)
      client.on('error', noop)
      client.end(true)
      throw error
    }
  }

  /**
   * The broker said another connection took this session over (MQTT 5
   * DISCONNECT 0x8E, as EMQX sends; Mosquitto just closes): the broker is
   * fine, the client id is in use elsewhere.
   */
  get takenOver(): boolean {
    return this.#takenOver
  }

  /** True until the connection is lost or closed. */
  get open(): boolean {
    return !this.#lost && this.#client.connected
  }

  /** Messages this connection delivered that the application left unacknowledged (the session owes them to the next connection). */
  get withheld(): number {
    return this.#inbound.withheld
  }

  /** Resolves once every message this connection delivered has settled, or the connection is gone. */
  inboundSettled(): Promise<void> {
    return this.#inbound.whenIdle()
  }

  /** Once, when the connection is lost (with the last error, if any) or closed; at once if it already is. */
  onClose(listener: (reason: Error | undefined) => void): Disposer {
    if (this.#lost) {
      queueMicrotask(() => listener(this.#reason))
      return noop
    }
    return this.#closed.on(listener)
  }

  /** When the broker asks the client to use another server (MQTT 5 DISCONNECT 0x9C/0x9D). */
  onRedirect(listener: (serverReference: string) => void): Disposer {
    return this.#redirected.on(listener)
  }

  async subscribe(subscriptions: readonly Subscription[], protocolVersion: 4 | 5): Promise<void> {
    await subscribeAll(this.#client, this.endpoint.id, subscriptions, protocolVersion)
  }

  async unsubscribe(topics: readonly string[]): Promise<void> {
    if (topics.length > 0 && this.open) await this.#client.unsubscribeAsync([...topics])
  }

  /**
   * Sends a publish; `done` is called when the broker acknowledged it (QoS ≥ 1)
   * or it was written (QoS 0), or with an error. If the connection is lost
   * first, `done` may never be called: the pool takes back what was in flight.
   */
  publish(topic: string, payload: string | Buffer, options: PublishOptions, done: (error?: Error) => void): void {
    const publishOptions: IClientPublishOptions = {
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
      ...(options.properties && this.#client.options.protocolVersion === 5 ? { properties: options.properties as never } : {}),
    }
    this.#client.publish(topic, payload, publishOptions, (error) => done(error ?? undefined))
  }

  /**
   * Closes the connection: gracefully (DISCONNECT, after publishes in flight
   * were acknowledged, for at most `graceMs`), or at once when `graceMs` is 0.
   * With `endSession` the broker forgets the session (its subscriptions and
   * anything queued for it) instead of keeping it for the next connection.
   */
  async close(graceMs: number, options: { readonly endSession?: boolean } = {}): Promise<void> {
    if (this.#lost) return
    const client = this.#client
    const drained = graceMs > 0 && client.connected && (await outgoingDrained(client, graceMs))
    if (this.#lost) return
    this.#lost = true
    const persistent = !this.#options.clean
    const v5 = this.#options.protocolVersion === 5
    // MQTT 5 ends a session by a DISCONNECT with a session expiry of 0 (allowed when the CONNECT had one).
    const disconnect = options.endSession && persistent && v5 && drained ? { properties: { sessionExpiryInterval: 0 } } : {}
    await new Promise<void>((resolve) => client.end(!drained, disconnect, () => resolve()))
    this.#closed.emit(undefined)
    // MQTT 3.1.1 has no session expiry: a clean-session CONNECT with the same client id discards the session.
    if (options.endSession && persistent && !v5) await endSessionByCleanConnect(this.#options)
  }

  /**
   * MQTT 5: whether any session subscribes to `topic`, from the reason code of
   * the PUBACK of an empty QoS 1 publish to it (0x10, "no matching
   * subscribers", says none does). `undefined` under MQTT 3.1.1, whose PUBACK
   * says nothing of it. The publish reaches the subscribers, if any.
   */
  hasSubscriber(topic: string): Promise<boolean | undefined> {
    if (this.#options.protocolVersion !== 5) return Promise.resolve(undefined)
    const client = this.#client
    let messageId: number | undefined
    let reasonCode: number | undefined
    const onSend = (packet: { cmd?: string; topic?: string; messageId?: number }): void => {
      if (packet.cmd === 'publish' && packet.topic === topic && messageId === undefined) messageId = packet.messageId
    }
    const onReceive = (packet: { cmd?: string; messageId?: number; reasonCode?: number }): void => {
      if (packet.cmd === 'puback' && packet.messageId === messageId) reasonCode = packet.reasonCode ?? 0
    }
    client.on('packetsend', onSend)
    client.on('packetreceive', onReceive)
    return this.publishNow(topic, '', { qos: 1 })
      .then(() => reasonCode !== NO_MATCHING_SUBSCRIBERS)
      .finally(() => {
        client.off('packetsend', onSend)
        client.off('packetreceive', onReceive)
      })
  }

  /**
   * Publishes and resolves once the broker acknowledged it (QoS 1) or it was
   * written (QoS 0); rejects if the connection closes first (MQTT.js never
   * calls back a persistent session's publish whose connection closed) or
   * after `timeoutMs`.
   */
  publishNow(topic: string, payload: string | Buffer, options: { readonly qos: 0 | 1; readonly retain?: boolean }, timeoutMs = PUBLISH_NOW_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const settle = (error: Error | undefined): void => {
        clearTimeout(timer)
        offClose()
        if (error) reject(error)
        else resolve()
      }
      const offClose = this.onClose(() => settle(new Error(`the connection to ${this.endpoint.id} closed before it acknowledged a publish to ${topic}`)))
      const timer = setTimeout(() => settle(new Error(`${this.endpoint.id} did not acknowledge a publish to ${topic} within ${timeoutMs} ms`)), timeoutMs)
      this.publish(topic, payload, options, settle)
    })
  }
}

/** MQTT.js options of a pool connection: login, TLS, session, will, receive maximum. */
function connectionClientOptions(options: BrokerConnectionOptions): IClientOptions {
  const v5 = options.protocolVersion === 5
  const persistent = !options.clean && v5
  const properties = {
    ...(persistent ? { sessionExpiryInterval: options.sessionExpirySeconds } : {}),
    ...(v5 && options.receiveMaximum !== undefined ? { receiveMaximum: options.receiveMaximum } : {}),
  }
  const will = options.will
  return {
    ...clientOptions(options.endpoint, options.clientId, options.protocolVersion, options.connectTimeoutMs),
    clean: options.clean,
    keepalive: options.keepaliveSeconds,
    ...(Object.keys(properties).length > 0 ? { properties } : {}),
    ...(will
      ? {
          will: {
            topic: will.topic,
            payload: Buffer.from(will.payload),
            qos: 1 as const,
            retain: will.retain,
            ...(v5 ? { properties: { willDelayInterval: will.delaySeconds } } : {}),
          },
        }
      : {}),
  }
}

async function endSessionByCleanConnect(options: BrokerConnectionOptions): Promise<void> {
  const client = connect(options.endpoint.url, {
    ...clientOptions(options.endpoint, options.clientId, options.protocolVersion, options.connectTimeoutMs),
    clean: true,
    keepalive: 0,
  })
  client.on('error', noop)
  try {
    await awaitConnack(client, { timeoutMs: options.connectTimeoutMs })
    await client.endAsync(false)
  } catch (error) {
    client.end(true)
    options.log.warn('could not end a session with a clean connect; the broker keeps it until it expires', { broker: options.endpoint.id, error })
  }
}

function noop(): void {}
