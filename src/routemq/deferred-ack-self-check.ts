import { Duplex } from 'node:stream'
import { MqttClient } from 'mqtt'
import { receiveWithDeferredAcks } from './deferred-ack-receiver.js'
import { UnsupportedMqttClientError } from './errors/unsupported-mqtt-client-error.js'
import { silentLogger } from './logger.js'
import type { InboundMessage } from './mqtt-transport.js'

// Hand-written MQTT 5 packets (what a broker would send), so the check needs no broker.
const CONNACK = Buffer.from([0x20, 0x03, 0x00, 0x00, 0x00])
/** PUBLISH, QoS 1, topic "t", packet id 7, no properties, payload "x". */
const PUBLISH_QOS1 = Buffer.from([0x32, 0x07, 0x00, 0x01, 0x74, 0x00, 0x07, 0x00, 0x78])
const PUBACK = 0x40
const CONNECT = 0x10
const CHECK_TIMEOUT_MS = 2_000

let verdict: Promise<void> | undefined

/**
 * Checks, once per process, that the installed MQTT.js still lets the
 * transports acknowledge a message only after its handler settled: it runs
 * the real client over an in-memory stream, delivers one QoS 1 PUBLISH and
 * requires that no PUBACK leaves before the message is settled and that
 * exactly one leaves after. Throws `UnsupportedMqttClientError` otherwise,
 * since acknowledging early would lose messages on a crash.
 *
 * @example
 * await verifyDeferredAcks() // in connect(), before the first connection
 */
export function verifyDeferredAcks(): Promise<void> {
  verdict ??= runSelfCheck().catch((error: unknown) => {
    if (error instanceof UnsupportedMqttClientError) throw error
    // Not a verdict on MQTT.js (a stalled event loop): the next start checks again.
    verdict = undefined
    throw new UnsupportedMqttClientError(`a deferred acknowledgement that works (the check failed: ${String((error as Error)?.message ?? error)})`)
  })
  return verdict
}

/** The check itself, not memoized: for tests. */
export async function runSelfCheck(createClient = defaultClient): Promise<void> {
  const written: Buffer[] = []
  let wrote: () => void = noop
  const stream = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk)
      wrote()
      done()
    },
  })
  const nextWrite = (): Promise<void> => new Promise((resolve) => (wrote = resolve))
  const client = createClient(stream)
  let delivered: (message: InboundMessage) => void = noop
  const message = new Promise<InboundMessage>((resolve) => (delivered = resolve))
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)
  })
  // Raced several times; whichever race ends first, a later rejection must not go unhandled.
  timeout.catch(noop)
  try {
    receiveWithDeferredAcks(client, { receiver: delivered, ackOrder: 'arrival', broker: 'self-check', log: silentLogger })
    client.on('error', noop)
    while (written[0]?.[0] !== CONNECT) await Promise.race([nextWrite(), timeout])
    const connected = new Promise<void>((resolve) => client.once('connect', () => resolve()))
    stream.push(CONNACK)
    await Promise.race([connected, timeout])
    const early = (): UnsupportedMqttClientError => new UnsupportedMqttClientError('a way to hold back the PUBACK until the handler settled (it acknowledged at once)')
    const acknowledgedEarly = (async () => {
      while (pubacks(written) === 0) await nextWrite()
      throw early()
    })()
    acknowledgedEarly.catch(noop)
    stream.push(PUBLISH_QOS1)
    const inbound = await Promise.race([message, acknowledgedEarly, timeout])
    // Whatever MQTT.js would write on its own for this packet, it writes within these turns.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    if (pubacks(written) > 0) throw early()
    const acknowledged = nextWrite()
    inbound.settle(true)
    await Promise.race([acknowledged, timeout])
    if (pubacks(written) !== 1) throw new UnsupportedMqttClientError('a way to send the PUBACK once the handler settled (none was sent)')
  } finally {
    clearTimeout(timer)
    client.end(true)
    stream.destroy()
  }
}

function defaultClient(stream: Duplex): MqttClient {
  return new MqttClient(() => stream, { protocolVersion: 5, keepalive: 0, reconnectPeriod: 0, clientId: 'routemq-self-check', clean: true })
}

/** PUBACKs of packet 7 among the bytes the client wrote (packets may come in several chunks). */
function pubacks(written: readonly Buffer[]): number {
  const bytes = Buffer.concat(written)
  let count = 0
  let at = 0
  while (at < bytes.length) {
    const type = bytes[at]!
    let length = 0
    let shift = 0
    let i = at + 1
    for (; i < bytes.length; i++) {
      length += (bytes[i]! & 0x7f) << shift
      shift += 7
      if ((bytes[i]! & 0x80) === 0) break
    }
    const body = i + 1
    if (type === PUBACK && length >= 2 && bytes.readUInt16BE(body) === 7) count++
    at = body + length
  }
  return count
}

function noop(): void {}
