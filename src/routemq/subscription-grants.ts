import type { ISubscriptionGrant } from 'mqtt'
import { SubscriptionRejectedError } from './errors/subscription-rejected-error.js'

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
