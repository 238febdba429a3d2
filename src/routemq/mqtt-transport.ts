/** MQTT quality of service. */
export type QoS = 0 | 1 | 2

/** MQTT 5 user properties: a name may repeat, so a value may be a list. */
export type UserProperties = Readonly<Record<string, string | readonly string[]>>

/** The MQTT 5 properties a message may carry (all absent under MQTT 3.1.1). */
export interface MessageProperties {
  readonly userProperties?: UserProperties
  readonly contentType?: string
  readonly responseTopic?: string
  readonly correlationData?: Buffer
  readonly payloadFormatIndicator?: boolean
  readonly messageExpiryInterval?: number
  readonly subscriptionIdentifier?: number | readonly number[]
}

/** A subscription the kernel asks the transport to hold on every connection. */
export interface Subscription {
  /** The full filter, including any `$share/<group>/` prefix. */
  readonly topic: string
  readonly qos: QoS
  /**
   * MQTT 5 subscription identifier to subscribe with, so each copy a broker
   * sends for overlapping subscriptions says which one it is for.
   */
  readonly identifier?: number
}

/** Options of an outgoing publish. */
export interface PublishOptions {
  readonly qos?: QoS
  readonly retain?: boolean
  readonly properties?: Omit<MessageProperties, 'subscriptionIdentifier'>
  /**
   * A transport with several broker connections publishes through this one
   * (an `InboundMessage.broker` label) while it is connected: a reply then
   * leaves through the broker its request came from, the one the device is
   * on. `ctx.publish` sets it to the message's broker. Ignored by transports
   * with one connection.
   */
  readonly via?: string
}

/**
 * A message as the transport hands it to the kernel. The transport keeps the
 * broker waiting for the acknowledgement until `settle` is called.
 */
export interface InboundMessage {
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  readonly dup: boolean
  readonly properties: MessageProperties | undefined
  /** Which broker connection delivered it (a label, never a URL with credentials). */
  readonly broker: string
  /**
   * Ends the message's life in the transport, exactly once. `true` sends the
   * acknowledgement (PUBACK, or PUBCOMP for QoS 2); `false` withholds it, so
   * a persistent session gets the message again when it resumes. QoS 0 has
   * nothing to acknowledge.
   */
  settle(acknowledge: boolean): void
}

/**
 * Receives each inbound message. It returns at once and settles the message
 * later: the transport must keep reading from the broker meanwhile, since the
 * acknowledgements of the handlers' own publishes and the keepalive pings
 * arrive on the same connection.
 */
export type MessageReceiver = (message: InboundMessage) => void

/**
 * The seam through which the kernel talks to MQTT. The kernel ships
 * `DefaultMqttTransport` (one broker over MQTT.js); a module may register
 * another under `MQTT_TRANSPORT`, as the broker pool does.
 *
 * @example
 * class MyTransport implements MqttTransport { ... }
 * Application.create({ router, transport: new MyTransport() })
 */
export interface MqttTransport {
  /** True while at least one broker connection is up. */
  readonly connected: boolean
  /** True when the broker keeps the session (and unacknowledged messages) across a disconnect. */
  readonly persistentSession: boolean
  /** Connects and starts handing messages to `receiver`. Resolves once a broker accepted the connection. */
  connect(receiver: MessageReceiver): Promise<void>
  /** Subscribes now and again after every reconnect. Resolves when the broker granted them. */
  subscribe(subscriptions: readonly Subscription[]): Promise<void>
  /** Drops subscriptions made with `subscribe`. */
  unsubscribe(topics: readonly string[]): Promise<void>
  /**
   * Publishes. Resolves when the broker acknowledged it (QoS 1 and 2) or the
   * packet was written to the socket (QoS 0); never merely when queued.
   */
  publish(topic: string, payload: string | Uint8Array, options?: PublishOptions): Promise<void>
  /**
   * Optional: called by `Application.stop()` before it stops taking messages.
   * The transport stops new messages from coming to this instance and lets
   * the broker deliver what it already holds for it (a shared subscription's
   * share, a persistent session's queue), so that other instances get the
   * traffic instead of a session that is going away. Without it, `stop()`
   * unsubscribes the routes of a clean session.
   */
  handBack?(): Promise<void>
  /** Disconnects and releases everything. Idempotent. */
  close(): Promise<void>
}
