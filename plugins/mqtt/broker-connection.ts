import { connect, type IClientPublishOptions, type IDisconnectPacket, type MqttClient } from 'mqtt'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import type { AckSequencer } from '../../src/routemq/ack-sequencer.js'
import { receiveWithDeferredAcks } from '../../src/routemq/deferred-ack-receiver.js'
import { outgoingDrained } from '../../src/routemq/outgoing-drained.js'
import { checkedSubscribe } from '../../src/routemq/subscription-grants.js'
import type { Logger } from '../../src/routemq/logger.js'
import type { MessageReceiver, PublishOptions, Subscription } from '../../src/routemq/mqtt-transport.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import type { ResolvedBrokerPoolOptions } from './broker-pool-options.js'
import { clientOptions } from './mqtt-client-options.js'

/** Options of `BrokerConnection.open`: the pool's session settings, for one broker. */
export interface BrokerConnectionOptions
  extends Pick<
    ResolvedBrokerPoolOptions,
    'clientId' | 'clean' | 'sessionExpirySeconds' | 'protocolVersion' | 'keepaliveSeconds' | 'connectTimeoutMs' | 'ackOrder'
  > {
  readonly endpoint: BrokerEndpoint
  readonly receiver: MessageReceiver
  readonly log: Logger
}

/** MQTT 5 reason codes of a server DISCONNECT that send the client elsewhere. */
const USE_ANOTHER_SERVER = 0x9c
const SERVER_MOVED = 0x9d

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
  /** Time from connect to CONNACK, in ms. */
  readonly connectMs: number
  readonly #client: MqttClient
  readonly #inbound: AckSequencer
  readonly #log: Logger
  readonly #closed = new TypedEvent<Error | undefined>()
  readonly #redirected = new TypedEvent<string>()
  #lost = false
  #reason: Error | undefined

  private constructor(endpoint: BrokerEndpoint, client: MqttClient, inbound: AckSequencer, connectMs: number, log: Logger) {
    this.endpoint = endpoint
    this.#client = client
    this.#inbound = inbound
    this.connectMs = connectMs
    this.#log = log
    let lastError: Error | undefined
    client.on('error', (error) => {
      lastError = error
      log.debug('broker connection error', { broker: endpoint.id, error })
    })
    client.on('disconnect', (packet: IDisconnectPacket) => {
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
  static open(options: BrokerConnectionOptions): Promise<BrokerConnection> {
    const { endpoint } = options
    const persistent = !options.clean && options.protocolVersion === 5
    const client = connect(endpoint.url, {
      ...clientOptions(endpoint, options.clientId, options.protocolVersion, options.connectTimeoutMs),
      clean: options.clean,
      keepalive: options.keepaliveSeconds,
      manualConnect: true,
      ...(persistent ? { properties: { sessionExpiryInterval: options.sessionExpirySeconds } } : {}),
    })
    const inbound = receiveWithDeferredAcks(client, { receiver: options.receiver, ackOrder: options.ackOrder, broker: endpoint.id, log: options.log })
    const started = performance.now()
    return new Promise((resolve, reject) => {
      const finish = (error: Error | undefined): void => {
        clearTimeout(timer)
        client.removeListener('connect', onConnect)
        client.removeListener('error', onError)
        client.removeListener('close', onClose)
        if (error) {
          client.on('error', noop)
          client.end(true)
          reject(error)
        } else {
          resolve(new BrokerConnection(endpoint, client, inbound, performance.now() - started, options.log))
        }
      }
      const onConnect = (): void => finish(undefined)
      const onError = (error: Error): void => finish(error)
      const onClose = (): void => finish(new Error('connection closed before CONNACK'))
      const timer = setTimeout(() => finish(new Error(`no CONNACK within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs)
      client.once('connect', onConnect)
      client.once('error', onError)
      client.once('close', onClose)
      client.connect()
    })
  }

  /** True until the connection is lost or closed. */
  get open(): boolean {
    return !this.#lost && this.#client.connected
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
    if (subscriptions.length === 0) return
    const client = this.#client
    if (protocolVersion === 5) {
      await Promise.all(
        subscriptions.map((s) =>
          checkedSubscribe(this.endpoint.id, [s.topic], () =>
            client.subscribeAsync({ [s.topic]: { qos: s.qos } }, s.identifier === undefined ? {} : { properties: { subscriptionIdentifier: s.identifier } }),
          ),
        ),
      )
      return
    }
    await checkedSubscribe(this.endpoint.id, subscriptions.map((s) => s.topic), () =>
      client.subscribeAsync(Object.fromEntries(subscriptions.map((s) => [s.topic, { qos: s.qos }]))),
    )
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
   */
  async close(graceMs: number): Promise<void> {
    if (this.#lost) return
    const client = this.#client
    const drained = graceMs > 0 && client.connected && (await outgoingDrained(client, graceMs))
    if (this.#lost) return
    this.#lost = true
    await client.endAsync(!drained).catch((error: unknown) => this.#log.debug('closing a broker connection failed', { error }))
    this.#closed.emit(undefined)
  }
}

function noop(): void {}
