/**
 * A CONNECT packet (clean session, no credentials), as the bytes a
 * balancer's health check sends: MQTT 3.1.1 (level 4) by default, MQTT 5
 * (level 5, no properties) when asked. A broker that answers with a CONNACK
 * accepting it is alive and speaks MQTT, which a bare TCP connect does not
 * prove.
 *
 * @example
 * mqttConnectPacket('haproxy-check', 10).toString('hex') // '101900044d5154540402000a000d686170726f78792d636865636b'
 */
export function mqttConnectPacket(clientId: string, keepaliveSeconds: number, protocolVersion: 4 | 5 = 4): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  if (id.length > 23) throw new Error('an MQTT 3.1.1 client id of up to 23 bytes is accepted by every broker')
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, protocolVersion, 0x02, keepaliveSeconds >> 8, keepaliveSeconds & 0xff, ...(protocolVersion === 5 ? [0x00] : [])])
  return packet(0x10, Buffer.concat([variable, lengthPrefixed(id)]))
}

/**
 * An MQTT 5 PUBLISH at QoS 1 (packet id 1, no properties, empty payload). A
 * broker answers with a PUBACK whose reason code says whether any session
 * subscribes to the topic: 0x00, or 0x10 "no matching subscribers".
 *
 * @example
 * mqtt5PublishPacket('routemq/control/routemq/ready').toString('hex')
 */
export function mqtt5PublishPacket(topic: string): Buffer {
  return packet(0x32, Buffer.concat([lengthPrefixed(Buffer.from(topic, 'utf8')), Buffer.from([0x00, 0x01, 0x00])]))
}

/** CONNACK of MQTT 3.1.1: no session present, return code 0 (accepted). */
export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00])

/** A regular expression over the hex of an MQTT 5 CONNACK that accepts (no session present, reason 0x00; properties vary). */
export const CONNACK5_ACCEPTED_HEX = '^20..0000'

/**
 * A regular expression over the hex of the PUBACK of packet id 1 with reason
 * 0x00 (a session subscribes to the topic): the short form, or one with a
 * reason code (and perhaps properties). 0x10, "no matching subscribers", fails it.
 */
export const PUBACK_SUBSCRIBED_HEX = '^40020001|^40..000100'

/** DISCONNECT, so that the broker logs a clean goodbye rather than a dropped client. */
export const DISCONNECT = Buffer.from([0xe0, 0x00])

function lengthPrefixed(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 0xff]), bytes])
}

function packet(type: number, body: Buffer): Buffer {
  // Remaining length as MQTT's variable byte integer.
  const length: number[] = []
  let rest = body.length
  do {
    let byte = rest % 128
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    length.push(byte)
  } while (rest > 0)
  return Buffer.concat([Buffer.from([type, ...length]), body])
}
