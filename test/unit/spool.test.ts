import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidOptionError, healthGate } from '../../src/index.js'
import { MessageSpool, type SpooledMessage } from '../../src/health/spool/message-spool.js'

function message(n: number, route = 'devices/{id}/telemetry'): SpooledMessage {
  return {
    route, topic: `devices/d${n % 3}/telemetry`, payload: Buffer.from(`{"n":${n}}`), qos: 1, retain: false,
    properties: { userProperties: { n: String(n) } }, broker: 'b1', spooledAt: 1_000 + n,
  }
}

describe('MessageSpool (LMDB on disk)', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'spool-unit-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('gives back what it kept, in arrival order, after it was closed and opened again', async () => {
    const first = MessageSpool.open(join(dir, 's'))
    const keys = await Promise.all([0, 1, 2, 3, 4].map((n) => first.append(message(n, n === 2 ? 'other/{x}' : undefined))))
    assert.deepEqual(keys, [1, 2, 3, 4, 5])
    await first.close()

    const again = MessageSpool.open(join(dir, 's'))
    assert.equal(again.count, 5)
    assert.equal(again.countOf('devices/{id}/telemetry'), 4)
    assert.equal(again.countOf('other/{x}'), 1)
    assert.equal(again.oldestSpooledAt, 1_000)
    const entries = again.entriesAfter(0, 10)
    assert.deepEqual(entries.map((e) => e.message.payload.toString()), [0, 1, 2, 3, 4].map((n) => `{"n":${n}}`))
    assert.deepEqual(entries[3]!.message, message(3))
    assert.equal(again.bytes, entries.reduce((sum, e) => sum + e.bytes, 0))
    await again.remove(entries[0]!)
    await again.remove(entries[0]!)
    assert.equal(again.count, 4)
    assert.equal(again.oldestSpooledAt, 1_001)
    assert.deepEqual(again.entriesAfter(entries[2]!.key, 1).map((e) => e.key), [4])
    // Numbered on from the last key left, never reusing one.
    assert.equal(await again.append(message(5)), 6)
    await again.close()
  })

  it('reads nothing at or after a reserved message not yet written, so that a write tried again keeps its place', async () => {
    const spool = MessageSpool.open(join(dir, 's'))
    try {
      const first = spool.reserve(message(0))
      await spool.append(message(1))
      assert.equal(spool.count, 2, 'a reserved message counts')
      assert.deepEqual(spool.entriesAfter(0, 10), [], 'the written one waits behind the reserved one')
      await spool.write(first, message(0))
      assert.deepEqual(spool.entriesAfter(0, 10).map((e) => e.message.payload.toString()), ['{"n":0}', '{"n":1}'])
      const gaveUp = spool.reserve(message(2))
      spool.forget(gaveUp, message(2))
      assert.equal(spool.count, 2)
      assert.equal(spool.entriesAfter(0, 10).length, 2, 'a forgotten reservation blocks nothing')
    } finally {
      await spool.close()
    }
  })

  it('refuses a second spool on a directory this process has open, naming the option', async () => {
    const spool = MessageSpool.open(join(dir, 's'), 'healthGate.spool.path')
    try {
      assert.throws(() => MessageSpool.open(join(dir, 's', '.'), 'healthGate.spool.path'), (error: unknown) =>
        error instanceof InvalidOptionError && error.field === 'healthGate.spool.path' && /another spool of this process/.test(error.message))
    } finally {
      await spool.close()
    }
    // Closed, the directory is free again.
    await MessageSpool.open(join(dir, 's')).close()
  })
})

describe('healthGate spool options', () => {
  const refused = (options: object, field: string, pattern: RegExp) =>
    assert.throws(() => healthGate('primary', options), (error: unknown) => error instanceof InvalidOptionError && error.field === field && pattern.test(error.message))

  it('refuses a spool without a path, a mistyped key, a tiny maxBytes, an unknown whenFull and a spool in reject mode', () => {
    refused({ spool: {} }, 'healthGate.spool.path', /directory/)
    refused({ spool: { path: '/tmp/x', maxByte: 10_000 } }, 'healthGate.spool.maxByte', /did you mean healthGate\.spool\.maxBytes/)
    refused({ spool: { path: '/tmp/x', maxBytes: 10 } }, 'healthGate.spool.maxBytes', /1024/)
    refused({ spool: { path: '/tmp/x', whenFull: 'drop' } }, 'healthGate.spool.whenFull', /wait/)
    refused({ mode: 'reject', spool: { path: '/tmp/x' } }, 'healthGate.spool', /mode 'hold'/)
  })

  it('reports no spool figures until HealthModule opened it, and the configured limits', () => {
    const gate = healthGate('primary', { spool: { path: '/tmp/never-opened', maxBytes: 4096 } })
    assert.deepEqual(gate.stats.spool, {
      label: 'primary', messages: 0, bytes: 0, maxBytes: 4096, oldestAgeMs: 0, spooledTotal: 0, replayedTotal: 0, waitedForRoomTotal: 0, waitingForRoom: 0,
      writesFailing: 0, writeError: undefined,
    })
    assert.equal(healthGate('primary').stats.spool, undefined)
  })
})
