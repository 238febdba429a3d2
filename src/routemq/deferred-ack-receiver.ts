import type { MqttClient, IPublishPacket } from 'mqtt'
import { AckSequencer, type AckOrder } from './ack-sequencer.js'
import type { Logger } from './logger.js'
import { assertDeferredAcks, DEFERRED_ACK, sendPubcomp, sendPuback } from './mqtt-client-internals.js'
import type { InboundMessage, MessageReceiver } from './mqtt-transport.js'

/** Options of `receiveWithDeferredAcks`. */
export interface DeferredAckOptions {
  readonly receiver: MessageReceiver
  readonly ackOrder: AckOrder
  /** The broker's label for `InboundMessage.broker` and logs; never a URL with credentials. */
  readonly broker: string
  readonly log: Logger
}

/**
 * Makes an MQTT.js client hand every PUBLISH to `receiver` and acknowledge it
 * only when the kernel settles it. MQTT.js sends the acknowledgement from
 * `handleMessage`'s callback and reads no further packet until it is called;
 * here the callback runs at once with `DEFERRED_ACK`, so MQTT.js skips its own
 * acknowledgement and keeps reading (pings, acknowledgements of our publishes),
 * and the PUBACK or PUBCOMP is sent when the message settles: in the chosen
 * order, and only on the socket that delivered it. A lost connection forgets
 * the acknowledgements it still owed. Returns the connection's sequencer, whose
 * `whenIdle()` tells when every message it delivered has settled.
 *
 * @example
 * const client = mqtt.connect(url, { manualConnect: true })
 * receiveWithDeferredAcks(client, { receiver, ackOrder: 'arrival', broker: 'broker-1', log })
 * client.connect()
 */
export function receiveWithDeferredAcks(client: MqttClient, options: DeferredAckOptions): AckSequencer {
  assertDeferredAcks(client)
  const sequencer = new AckSequencer(options.ackOrder)
  client.on('close', () => {
    const dropped = sequencer.reset()
    if (dropped > 0) options.log.warn('connection lost with messages unacknowledged', { broker: options.broker, dropped })
  })
  client.handleMessage = (packet: IPublishPacket, done: (error?: Error) => void): void => {
    const qos = packet.qos
    const messageId = packet.messageId
    let settle: (acknowledge: boolean) => void = noop
    if (qos !== 0 && messageId !== undefined) {
      // MQTT.js would queue an acknowledgement made while offline and send it on the next connection.
      const stream = client.stream
      const acknowledge = qos === 1 ? () => sendPuback(client, messageId) : () => sendPubcomp(client, messageId)
      const track = sequencer.track(() => {
        if (client.stream === stream && client.connected) acknowledge()
      })
      let settled = false
      settle = (ack) => {
        if (settled) return
        settled = true
        track(ack)
      }
    }
    const message: InboundMessage = {
      topic: packet.topic,
      payload: typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload,
      qos,
      retain: packet.retain,
      dup: packet.dup,
      properties: packet.properties,
      broker: options.broker,
      settle,
    }
    if (qos === 0) done()
    else done(DEFERRED_ACK)
    try {
      options.receiver(message)
    } catch (error) {
      options.log.error('message receiver threw; message left unacknowledged', { topic: packet.topic, error })
      settle(false)
    }
  }
  return sequencer
}

function noop(): void {}
