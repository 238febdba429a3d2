import assert from 'node:assert/strict'
import { MessageContext } from '../../src/index.js'
import { runInMessageScope } from '../../src/routemq/message-scope.js'
import { ConsistencyTracker, UNKNOWN_POSITION, withConsistencyKey } from '../../plugins/kysely/consistency-tracker.js'
import { formatLsn, WRITE_POSITION_PROPERTY } from '../../plugins/kysely/write-position.js'
import { rootContainerForTests } from '../support/inbound-message.js'

function message(position?: string | string[]): MessageContext {
  return new MessageContext({
    topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false,
    properties: position === undefined ? undefined : { userProperties: { [WRITE_POSITION_PROPERTY]: position } },
    broker: 'test', route: { pattern: 't', subscription: 't', name: undefined }, container: rootContainerForTests(), publish: async () => {},
  })
}

describe('ConsistencyTracker, what a read must see', () => {
  it('remembers nothing outside a message or key', () => {
    const tracker = new ConsistencyTracker(10, 1000)
    assert.equal(tracker.inScope, false)
    tracker.noteWrite({ lsn: 5n, at: 1 })
    assert.equal(tracker.lastWrite(), undefined)
  })

  it("keeps a message's writes for that message only", () => {
    const tracker = new ConsistencyTracker(10, 1000)
    const first = message()
    runInMessageScope(first, () => tracker.noteWrite({ lsn: 5n, at: 1 }))
    assert.deepEqual(runInMessageScope(first, () => tracker.lastWrite()), { lsn: 5n, at: 1 })
    assert.equal(runInMessageScope(message(), () => tracker.lastWrite()), undefined)
  })

  it("makes a read under a key inside a message see both the key's and the message's writes", () => {
    const tracker = new ConsistencyTracker(10, 1000)
    const ctx = message()
    runInMessageScope(ctx, () => {
      tracker.noteWrite({ lsn: 9n, at: 2 })
      withConsistencyKey('tenant', () => tracker.noteWrite({ lsn: 4n, at: 3 }))
      assert.equal(withConsistencyKey('tenant', () => tracker.lastWrite())?.lsn, 9n)
      // The keyed write was made in this message too.
      assert.equal(tracker.lastWrite()?.lsn, 9n)
    })
    assert.equal(withConsistencyKey('tenant', () => tracker.lastWrite())?.lsn, 4n)
  })

  it('only moves forward when writes finish out of order', () => {
    const tracker = new ConsistencyTracker(10, 1000)
    withConsistencyKey('k', () => {
      tracker.noteWrite({ lsn: 20n, at: 5 })
      tracker.noteWrite({ lsn: 10n, at: 6 })
      assert.deepEqual(tracker.lastWrite(), { lsn: 20n, at: 6 })
    })
  })

  it('lets a known position replace an unknown outcome only past the horizon', () => {
    const tracker = new ConsistencyTracker(10, 1000)
    withConsistencyKey('k', () => {
      tracker.noteWrite({ lsn: UNKNOWN_POSITION, at: 1000 })
      tracker.noteWrite({ lsn: 30n, at: 1500 })
      assert.equal(tracker.lastWrite()?.lsn, UNKNOWN_POSITION, 'the unknown write may still commit')
      tracker.noteWrite({ lsn: 40n, at: 2001 })
      assert.equal(tracker.lastWrite()?.lsn, 40n)
    })
    const unbounded = new ConsistencyTracker(10, Number.POSITIVE_INFINITY)
    withConsistencyKey('k', () => {
      unbounded.noteWrite({ lsn: UNKNOWN_POSITION, at: 1000 })
      unbounded.noteWrite({ lsn: 40n, at: 1_000_000 })
      assert.equal(unbounded.lastWrite()?.lsn, UNKNOWN_POSITION)
    })
  })

  it('forgets the least recently used key beyond maxKeys', () => {
    const tracker = new ConsistencyTracker(2, 1000)
    for (const key of ['a', 'b']) withConsistencyKey(key, () => tracker.noteWrite({ lsn: 1n, at: 1 }))
    withConsistencyKey('a', () => tracker.lastWrite())
    withConsistencyKey('c', () => tracker.noteWrite({ lsn: 1n, at: 1 }))
    assert.equal(withConsistencyKey('b', () => tracker.lastWrite()), undefined)
    assert.ok(withConsistencyKey('a', () => tracker.lastWrite()))
  })

  it('makes a read see the write position its message carries, with the later of it and its own writes', () => {
    const tracker = new ConsistencyTracker(10, 1000)
    const carrying = message('0/16B3748')
    assert.deepEqual(runInMessageScope(carrying, () => tracker.lastWrite()), { lsn: 23803720n, at: 0 })
    runInMessageScope(carrying, () => tracker.noteWrite({ lsn: 30_000_000n, at: 5 }))
    assert.deepEqual(runInMessageScope(carrying, () => tracker.lastWrite()), { lsn: 30_000_000n, at: 5 })
    assert.deepEqual(runInMessageScope(message(['1/0', '0/1']), () => tracker.lastWrite()), { lsn: 2n ** 32n, at: 0 }, 'the first value of a repeated property')
  })

  it('ignores a carried value that is no WAL position, reading as if none came', () => {
    const tracker = new ConsistencyTracker(10, 1000)
    for (const bad of ['', 'latest', '0/', '/1', '123456789/0', '0/1/2', ' 0/1', '0x1/2', 'G/1']) {
      assert.equal(runInMessageScope(message(bad), () => tracker.lastWrite()), undefined, JSON.stringify(bad))
    }
  })

  it('writes positions as PostgreSQL does, so they parse back', () => {
    assert.equal(formatLsn(23803720n), '0/16B3748')
    assert.equal(formatLsn((0xabn << 32n) + 0xffn), 'AB/FF')
  })
})
