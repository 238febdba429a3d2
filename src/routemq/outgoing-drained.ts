import type { MqttClient } from 'mqtt'

/**
 * Resolves true once every publish MQTT.js has in flight on `client` was
 * acknowledged, or false after `timeoutMs`. Checked after each packet the
 * broker sends: MQTT.js itself announces an empty outgoing store only while
 * it is already disconnecting.
 *
 * @example
 * const clean = await outgoingDrained(client, 5000)
 * await client.endAsync(!clean)
 */
export function outgoingDrained(client: MqttClient, timeoutMs: number): Promise<boolean> {
  const empty = (): boolean => Object.keys(client.outgoing).length === 0
  if (empty()) return Promise.resolve(true)
  return new Promise((resolve) => {
    const finish = (drained: boolean): void => {
      clearTimeout(timer)
      client.off('packetreceive', onPacket)
      client.off('close', onClose)
      resolve(drained)
    }
    // MQTT.js removes the acknowledged publish after emitting the packet event.
    const onPacket = (): void => {
      setImmediate(() => {
        if (empty()) finish(true)
      })
    }
    const onClose = (): void => finish(false)
    const timer = setTimeout(() => finish(false), timeoutMs)
    client.on('packetreceive', onPacket)
    client.once('close', onClose)
  })
}
