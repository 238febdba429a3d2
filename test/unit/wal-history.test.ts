import assert from 'node:assert/strict'
import { WalHistory } from '../../plugins/kysely/wal-history.js'

describe('WalHistory, lag in time from WAL positions', () => {
  it('knows nothing before the first sample', () => {
    assert.equal(new WalHistory(4).lag(10n, 5000), undefined)
  })

  it('finds a replica that has the newest position not behind', () => {
    const history = new WalHistory(4)
    history.record(1000, 100n)
    history.record(2000, 200n)
    assert.equal(history.lag(200n, 2500), undefined)
    assert.equal(history.lag(250n, 2500), undefined)
  })

  it('dates a replica between two samples as if the position grew evenly between them', () => {
    const history = new WalHistory(8)
    history.record(1000, 100n)
    history.record(2000, 200n)
    history.record(3000, 300n)
    // The primary was at 250 halfway between 2000 and 3000.
    assert.deepEqual(history.lag(250n, 3100), { ms: 600, beyond: false })
    assert.deepEqual(history.lag(200n, 3100), { ms: 1100, beyond: false })
    assert.deepEqual(history.lag(120n, 3000), { ms: 1800, beyond: false })
  })

  it('gives at least the oldest sample age to a replica behind everything remembered, across the ring', () => {
    const history = new WalHistory(3)
    for (let i = 1; i <= 5; i++) history.record(i * 1000, BigInt(i * 100))
    // Remembered: 300n@3000, 400n@4000, 500n@5000.
    assert.deepEqual(history.lag(50n, 6000), { ms: 3000, beyond: true })
    assert.deepEqual(history.lag(450n, 6000), { ms: 1500, beyond: false })
  })

  it('ignores a position older than the newest (a write that finished late)', () => {
    const history = new WalHistory(4)
    history.record(1000, 100n)
    history.record(2000, 300n)
    history.record(2100, 200n)
    assert.equal(history.newest, 300n)
    assert.equal(history.newestAt, 2000)
  })

  it('folds samples closer than the spacing into the newest, so a busy primary still spans the history', () => {
    const history = new WalHistory(4, 10)
    history.record(1000, 100n)
    for (let i = 1; i <= 9; i++) history.record(1000 + i, BigInt(100 + i))
    history.record(1010, 200n)
    history.record(1020, 300n)
    // Three slots: 109n@1009 (the folded first), 200n@1010, 300n@1020.
    assert.equal(history.newest, 300n)
    assert.deepEqual(history.lag(250n, 1030), { ms: 15, beyond: false })
    assert.deepEqual(history.lag(109n, 1030), { ms: 21, beyond: false })
    assert.deepEqual(history.lag(100n, 1030), { ms: 21, beyond: true })
  })

  it('forgets everything on clear (a new primary), then dates from new samples', () => {
    const history = new WalHistory(4)
    history.record(1000, 500n)
    history.clear()
    assert.equal(history.lag(10n, 2000), undefined)
    history.record(3000, 100n)
    history.record(4000, 200n)
    assert.deepEqual(history.lag(150n, 4000), { ms: 500, beyond: false })
  })
})
