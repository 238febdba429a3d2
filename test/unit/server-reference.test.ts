import assert from 'node:assert/strict'
import { resolveBrokerPoolOptions } from '../../plugins/mqtt/index.js'
import { findReferencedBroker } from '../../plugins/mqtt/server-reference.js'

describe('MQTT 5 server references', () => {
  const { brokers } = resolveBrokerPoolOptions(
    { brokers: ['mqtt://node1.emqx:1883', 'mqtt://Node2.EMQX:1883', 'mqtt://node2.emqx:2883', 'mqtt://[::1]:1883'] },
    'x',
  )

  const cases: [string, number, string | undefined][] = [
    ['node2.emqx:1883', 1883, 'node2.emqx:1883'],
    ['NODE2.emqx', 1883, 'node2.emqx:1883'],
    ['node2.emqx:2883', 1883, 'node2.emqx:2883'],
    ['mqtt://node1.emqx:1883', 1883, 'node1.emqx:1883'],
    ['node1.emqx:1883 node2.emqx:1883', 1883, 'node1.emqx:1883'],
    ['[::1]:1883', 1883, '[::1]:1883'],
    ['node3.emqx:1883', 1883, undefined],
    ['node1.emqx', 9999, undefined],
  ]
  for (const [reference, defaultPort, expected] of cases) {
    it(`maps "${reference}" to ${expected ?? 'no configured broker'}`, () => {
      assert.equal(findReferencedBroker(reference, brokers, defaultPort).broker?.id.toLowerCase(), expected)
    })
  }
})
