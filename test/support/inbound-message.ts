import { rootContainer } from '../../src/routemq/container.js'
import type { InboundMessage, MessageProperties, QoS } from '../../src/index.js'

/** A fresh child of tsyringe's root container, so tests never share registrations. */
export function rootContainerForTests() {
  return rootContainer.createChildContainer()
}

/** An inbound message that records how it was settled. */
export interface RecordedMessage extends InboundMessage {
  readonly settled: Promise<boolean>
  readonly settlements: boolean[]
}

export function inbound(
  topic: string,
  payload: string | Buffer,
  options: { qos?: QoS; properties?: MessageProperties } = {},
): RecordedMessage {
  const settlements: boolean[] = []
  let resolve!: (ack: boolean) => void
  const settled = new Promise<boolean>((r) => (resolve = r))
  return {
    topic,
    payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
    qos: options.qos ?? 1,
    retain: false,
    dup: false,
    properties: options.properties,
    broker: 'test',
    settle(ack) {
      settlements.push(ack)
      resolve(ack)
    },
    settled,
    settlements,
  }
}
