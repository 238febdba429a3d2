/**
 * An MQTT 3.1.1 CONNECT packet (clean session, no credentials), as the
 * bytes a balancer's health check sends, and the CONNACK that accepts it.
 * A broker that answers with `20 02 00 00` took the connection: it is
 * alive and speaks MQTT, which a bare TCP connect does not prove.
 *
 * @example
 * mqttConnectPacket('haproxy-check', 10).toString('hex') // '101900044d5154540402000a000d686170726f78792d636865636b'
 */
export function mqttConnectPacket(clientId: string, keepaliveSeconds: number): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  if (id.length > 23) throw new Error('an MQTT 3.1.1 client id of up to 23 bytes is accepted by every broker')
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, keepaliveSeconds >> 8, keepaliveSeconds & 0xff])
  const payload = Buffer.concat([Buffer.from([id.length >> 8, id.length & 0xff]), id])
  const remaining = variable.length + payload.length
  return Buffer.concat([Buffer.from([0x10, remaining]), variable, payload])
}

/** CONNACK: no session present, return code 0 (accepted). */
export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00])

/** DISCONNECT, so that the broker logs a clean goodbye rather than a dropped client. */
export const DISCONNECT = Buffer.from([0xe0, 0x00])
