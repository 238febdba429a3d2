import assert from 'node:assert/strict'
import { isOfflineBufferFullError } from '../../plugins/mqtt/index.js'
import { outgoing, PublishQueue } from '../../plugins/mqtt/publish-queue.js'
import type { BrokerConnection } from '../../plugins/mqtt/broker-connection.js'

const noop = (): void => {}
const connection = {} as BrokerConnection

describe('PublishQueue', () => {
  it('keeps publish order, also for entries taken back after a lost connection', () => {
    const queue = new PublishQueue({ maxMessages: 10, maxBytes: 1000 })
    const entries = ['a', 'b', 'c'].map((t) => outgoing(t, 'x', { qos: 1 }, noop, noop))
    for (const entry of entries) queue.add(entry)
    queue.markSent(entries[0]!, connection, noop, 0)
    queue.markSent(entries[1]!, connection, noop, 0)
    assert.deepEqual([...queue.pending()].map((e) => e.topic), ['c'])
    for (const entry of queue.inflightOn(connection)) queue.markPending(entry)
    assert.deepEqual([...queue.pending()].map((e) => e.topic), ['a', 'b', 'c'])
    assert.equal(queue.pendingCount, 3)
  })

  it('refuses a publish over the message or byte limit and keeps everything it had', () => {
    const byCount = new PublishQueue({ maxMessages: 2, maxBytes: 1000 })
    byCount.add(outgoing('a', 'x', {}, noop, noop))
    byCount.add(outgoing('b', 'x', {}, noop, noop))
    assert.throws(() => byCount.add(outgoing('c', 'x', {}, noop, noop)), isOfflineBufferFullError)
    assert.equal(byCount.size, 2)
    const byBytes = new PublishQueue({ maxMessages: 10, maxBytes: 10 })
    byBytes.add(outgoing('t', Buffer.alloc(8), {}, noop, noop))
    assert.throws(() => byBytes.add(outgoing('t', Buffer.alloc(2), {}, noop, noop)), /10 bytes/)
    assert.equal(byBytes.bytes, 9)
  })

  it('counts attempts so that a late answer to an earlier send is recognised', () => {
    const queue = new PublishQueue({ maxMessages: 10, maxBytes: 1000 })
    const entry = outgoing('a', 'x', { qos: 1 }, noop, noop)
    queue.add(entry)
    assert.equal(queue.markSent(entry, connection, noop, 0), 1)
    queue.markPending(entry)
    assert.equal(queue.markSent(entry, connection, noop, 0), 2)
  })

  it('releases the broker outstanding count when an entry is taken back or removed', () => {
    const queue = new PublishQueue({ maxMessages: 10, maxBytes: 1000 })
    let outstanding = 0
    const begin = (): (() => void) => {
      outstanding++
      return () => outstanding--
    }
    const entry = outgoing('a', 'x', { qos: 1 }, noop, noop)
    queue.add(entry)
    queue.markSent(entry, connection, begin(), 0)
    queue.markPending(entry)
    assert.equal(outstanding, 0)
    queue.markSent(entry, connection, begin(), 0)
    queue.remove(entry)
    assert.equal(outstanding, 0)
  })
})
