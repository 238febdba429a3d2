import assert from 'node:assert/strict'
import FakeTimers from '@sinonjs/fake-timers'
import { BrokerDropWatch, type BrokerDropEvent } from '../../plugins/mqtt/broker-drop-watch.js'
import type { LogFields, Logger } from '../../src/index.js'

function recordingLogger(): Logger & { errors: [string, LogFields | undefined][] } {
  const errors: [string, LogFields | undefined][] = []
  return { errors, debug: () => undefined, info: () => undefined, warn: () => undefined, error: (message, fields) => void errors.push([message, fields]) }
}

describe("watching what brokers say they dropped", () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => (clock = FakeTimers.install({ now: 1_000_000 })))
  afterEach(() => clock.uninstall())

  it('takes the first value as history, counts increases, and logs one ERROR per episode', () => {
    const log = recordingLogger()
    const watch = new BrokerDropWatch(log, 60_000)
    const events: BrokerDropEvent[] = []
    watch.onDrops((e) => events.push(e))
    watch.sample('b1', Buffer.from('15'))
    assert.equal(watch.dropped('b1'), 0, 'drops before the pool watched are not ours to report')
    assert.equal(watch.episode('b1'), undefined)
    clock.tick(11_000)
    watch.sample('b1', Buffer.from('40'))
    clock.tick(11_000)
    watch.sample('b1', Buffer.from('42'))
    assert.equal(watch.dropped('b1'), 27)
    assert.equal(watch.episode('b1')?.count, 27)
    assert.equal(log.errors.length, 1, 'one ERROR for the episode')
    assert.deepEqual(events, [{ broker: 'b1', dropped: 25, inEpisode: 25 }])
    clock.tick(61_000)
    assert.equal(watch.episode('b1'), undefined, 'a minute without new drops ends it')
    watch.sample('b1', Buffer.from('42'))
    assert.equal(log.errors.length, 1)
    watch.sample('b1', Buffer.from('43'))
    assert.equal(log.errors.length, 2, 'a new episode is logged again')
  })

  it('counts from zero after a broker restart, and ignores what is not a count', () => {
    const watch = new BrokerDropWatch(recordingLogger(), 60_000)
    watch.sample('b1', Buffer.from('100'))
    watch.sample('b1', Buffer.from('7'))
    assert.equal(watch.dropped('b1'), 7, 'a smaller value: the broker restarted and dropped 7 since')
    for (const junk of ['', '-3', 'NaN', '1e99', 'twelve']) watch.sample('b1', Buffer.from(junk))
    assert.equal(watch.dropped('b1'), 7)
    assert.equal(watch.dropped('b2'), 0)
  })
})
