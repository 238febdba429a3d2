import type { ISubscriptionGrant, MqttClient } from 'mqtt'
import { SubscriptionRejectedError } from './errors/subscription-rejected-error.js'
import type { Subscription } from './mqtt-transport.js'
import { filtersOverlap } from './topic-overlap.js'

/**
 * Subscribes through `subscribe` and turns a refusal, whether reported in the
 * grants or (as MQTT.js 5 does) as a rejected promise carrying the SUBACK,
 * into a `SubscriptionRejectedError` naming the topic.
 *
 * @example
 * await checkedSubscribe('broker-1', ['a/#'], () => client.subscribeAsync({ 'a/#': { qos: 1 } }))
 */
export async function checkedSubscribe(
  broker: string,
  topics: readonly string[],
  subscribe: () => Promise<ISubscriptionGrant[]>,
): Promise<void> {
  let grants: ISubscriptionGrant[]
  try {
    grants = await subscribe()
  } catch (error) {
    const granted = (error as { packet?: { granted?: unknown } }).packet?.granted
    if (Array.isArray(granted)) {
      const index = granted.findIndex((code) => typeof code === 'number' && code >= 128)
      throw new SubscriptionRejectedError(broker, topics[Math.max(0, index)] ?? topics[0] ?? '')
    }
    throw error
  }
  for (const grant of grants) {
    if (grant.qos === 128 || (grant.qos as number) > 2) throw new SubscriptionRejectedError(broker, grant.topic)
  }
}

/**
 * Subscribes `subscriptions` on `client`, checking every grant, in as few
 * SUBSCRIBE packets as MQTT allows. Under MQTT 5 a subscription identifier
 * belongs to a whole packet, and it is what tells apart the copies a broker
 * sends for overlapping filters: a filter that overlaps another keeps a packet
 * with its own identifier; the others share one packet without identifiers
 * (a message matching one of them matches no other route). Fewer packets also
 * means fewer SUBACKs written back to back, which a broker without
 * TCP_NODELAY (Mosquitto's default) holds for the client's delayed ACK, 40 ms
 * each, exactly when the app hurries to resubscribe on a restarted broker.
 *
 * @example
 * await subscribeAll(client, 'broker-1', router.subscriptions(), 5)
 */
export async function subscribeAll(client: MqttClient, broker: string, subscriptions: readonly Subscription[], protocolVersion: 4 | 5): Promise<void> {
  if (subscriptions.length === 0) return
  const overlapping = protocolVersion === 5
    ? subscriptions.filter((s) => s.identifier !== undefined && subscriptions.some((other) => other !== s && filtersOverlap(s.topic, other.topic)))
    : []
  const plain = subscriptions.filter((s) => !overlapping.includes(s))
  await Promise.all([
    ...overlapping.map((s) => checkedSubscribe(broker, [s.topic], () =>
      client.subscribeAsync({ [s.topic]: { qos: s.qos } }, { properties: { subscriptionIdentifier: s.identifier! } }))),
    ...(plain.length === 0 ? [] : [checkedSubscribe(broker, plain.map((s) => s.topic), () =>
      client.subscribeAsync(Object.fromEntries(plain.map((s) => [s.topic, { qos: s.qos }]))))]),
  ])
}
