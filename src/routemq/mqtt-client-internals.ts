import type { MqttClient } from 'mqtt'
import { UnsupportedMqttClientError } from './errors/unsupported-mqtt-client-error.js'

/**
 * The packet-level part of MQTT.js the transports need to acknowledge a
 * message after its handler settled. MQTT.js sends the acknowledgement inside
 * `handleMessage`'s callback and reads no further packet until it is called
 * (so a slow handler would stall pings and the acknowledgements of our own
 * publishes); calling back with an error skips the acknowledgement, which is
 * then sent from here. Kept in one file, checked once at connect.
 */
interface MqttClientPackets {
  _sendPacket(packet: { cmd: 'puback' | 'pubcomp'; messageId: number }, cb?: () => void): void
  _releaseIncomingQoS2Publish(messageId: number): void
  incomingStore: { del(packet: { messageId?: number }, cb: () => void): void }
}

/** Passed to `handleMessage`'s callback: "acknowledgement deferred, read on". */
export const DEFERRED_ACK = Object.freeze(new Error('acknowledgement deferred until the handler settles'))

/** Throws `UnsupportedMqttClientError` when this MQTT.js lacks the hooks. */
export function assertDeferredAcks(client: MqttClient): void {
  const packets = client as unknown as Partial<MqttClientPackets>
  if (typeof packets._sendPacket !== 'function') throw new UnsupportedMqttClientError('MqttClient._sendPacket')
  if (typeof packets._releaseIncomingQoS2Publish !== 'function') {
    throw new UnsupportedMqttClientError('MqttClient._releaseIncomingQoS2Publish')
  }
}

/** Sends the PUBACK of a QoS 1 message. */
export function sendPuback(client: MqttClient, messageId: number): void {
  ;(client as unknown as MqttClientPackets)._sendPacket({ cmd: 'puback', messageId })
}

/** Completes a QoS 2 message: forgets it and sends the PUBCOMP, as MQTT.js would have. */
export function sendPubcomp(client: MqttClient, messageId: number): void {
  const packets = client as unknown as MqttClientPackets
  packets.incomingStore.del({ messageId }, noop)
  packets._releaseIncomingQoS2Publish(messageId)
  packets._sendPacket({ cmd: 'pubcomp', messageId })
}

function noop(): void {}
