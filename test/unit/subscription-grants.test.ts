import assert from 'node:assert/strict'
import { isSubscriptionRejectedError } from '../../src/index.js'
import { checkedSubscribe } from '../../src/routemq/subscription-grants.js'

describe('checkedSubscribe', () => {
  it('passes granted subscriptions', async () => {
    await checkedSubscribe('b1', ['a/#'], async () => [{ topic: 'a/#', qos: 1 }])
  })

  it('names the refused topic when the grants say 128', async () => {
    await assert.rejects(
      checkedSubscribe('b1', ['a', 'b'], async () => [{ topic: 'a', qos: 1 }, { topic: 'b', qos: 128 }]),
      (e: unknown) => isSubscriptionRejectedError(e) && e.topic === 'b' && e.broker === 'b1',
    )
  })

  it('turns a rejection carrying the SUBACK (as MQTT.js 5 reports refusals) into the named error', async () => {
    const refusal = Object.assign(new Error('Not authorized'), { packet: { granted: [0, 135] } })
    await assert.rejects(
      checkedSubscribe('b1', ['ok', 'secret/#'], async () => { throw refusal }),
      (e: unknown) => isSubscriptionRejectedError(e) && e.topic === 'secret/#',
    )
  })

  it('lets other errors through unchanged', async () => {
    const lost = new Error('connection closed')
    await assert.rejects(checkedSubscribe('b1', ['a'], async () => { throw lost }), (e: unknown) => e === lost)
  })
})
