import assert from 'node:assert/strict'
import FakeTimers from '@sinonjs/fake-timers'
import type { LogFields, Logger } from '../../src/index.js'
import { SummarisedWarning } from '../../src/routemq/summarised-warning.js'

interface Entry {
  readonly level: string
  readonly message: string
  readonly fields?: LogFields
}

function recording(): { log: Logger; entries: Entry[] } {
  const entries: Entry[] = []
  const at = (level: string) => (message: string, fields?: LogFields) => void entries.push({ level, message, fields })
  return { log: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries }
}

describe('SummarisedWarning', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => (clock = FakeTimers.install({ now: 0 })))
  afterEach(() => clock.uninstall())

  it('logs the first occurrence of an episode and reports the rest in one line when it ends', () => {
    const { log, entries } = recording()
    const lost = new SummarisedWarning(log, 'a query lost its connection', { intervalMs: 10_000 })
    assert.equal(lost.record({ n: 1 }), true)
    for (let n = 2; n <= 58; n++) {
      clock.tick(37)
      assert.equal(lost.record({ n }), false)
    }
    assert.equal(entries.length, 1)
    clock.tick(17)
    lost.end()
    assert.deepEqual(entries, [
      { level: 'warn', message: 'a query lost its connection', fields: { n: 1 } },
      { level: 'warn', message: 'a query lost its connection (57 more in 2.1 s)', fields: { n: 58, count: 57 } },
    ])
    assert.equal(lost.ongoing(), false)
    assert.equal(lost.record({ n: 59 }), true, 'after the end, the next occurrence is news')
  })

  it('writes nothing more at the end of an episode of one', () => {
    const { log, entries } = recording()
    const lost = new SummarisedWarning(log, 'm', { intervalMs: 1000 })
    lost.record({})
    lost.end()
    lost.end()
    assert.equal(entries.length, 1)
  })

  it('reports every interval while the storm goes on, and ends it after a quiet interval', () => {
    const { log, entries } = recording()
    const refused = new SummarisedWarning(log, 'could not connect', { intervalMs: 1000, level: 'error' })
    refused.record({ attempt: 1 })
    for (let attempt = 2; attempt <= 25; attempt++) {
      clock.tick(100)
      refused.record({ attempt })
    }
    // 2.4 s in: one summary at 1 s (9 counted), one at 2 s (10 counted); 5 counted since.
    assert.deepEqual(entries.map((e) => e.message), ['could not connect', 'could not connect (9 more in 1 s)', 'could not connect (10 more in 1 s)'])
    assert.ok(entries.every((e) => e.level === 'error'))
    clock.tick(600)
    assert.equal(entries[3]!.message, 'could not connect (5 more in 1 s)')
    assert.equal(refused.ongoing(), true)
    clock.tick(1000)
    assert.equal(refused.ongoing(), false, 'a whole interval without one ends the episode')
    assert.equal(entries.length, 4)
    refused.record({ attempt: 26 })
    assert.equal(entries[4]!.message, 'could not connect')
  })

  it('keeps one episode per key', () => {
    const { log, entries } = recording()
    const failed = new SummarisedWarning(log, 'read failed', { intervalMs: 5000 })
    failed.record({ replica: 'r1' }, 'r1')
    failed.record({ replica: 'r2' }, 'r2')
    failed.record({ replica: 'r1' }, 'r1')
    failed.record({ replica: 'r1' }, 'r1')
    clock.tick(500)
    failed.end('r1')
    assert.deepEqual(entries.map((e) => e.message), ['read failed', 'read failed', 'read failed (2 more in 0.5 s)'])
    assert.equal(failed.ongoing('r2'), true)
    failed.record({ replica: 'r2' }, 'r2')
    failed.endAll()
    assert.equal(entries[3]!.message, 'read failed (1 more in 0.5 s)')
    assert.equal(entries[3]!.fields!.replica, 'r2')
  })
})
