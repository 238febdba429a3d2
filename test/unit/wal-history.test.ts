import assert from 'node:assert/strict'
import { WalHistory } from '../../plugins/kysely/wal-history.js'

describe('WalHistory, lag in time from WAL positions', () => {
  it('knows nothing before the first probe', () => {
    assert.equal(new WalHistory(4).behindSince(10n), undefined)
  })

  it('finds a replica caught up with the newest position not behind', () => {
    const history = new WalHistory(4)
    history.record(1000, 100n)
    history.record(2000, 200n)
    assert.equal(history.behindSince(200n), undefined)
    assert.equal(history.behindSince(250n), undefined)
  })

  it('dates a replica behind by the newest probe it has caught up with', () => {
    const history = new WalHistory(4)
    history.record(1000, 100n)
    history.record(2000, 200n)
    history.record(3000, 300n)
    assert.equal(history.behindSince(250n), 2000)
    assert.equal(history.behindSince(100n), 1000)
  })

  it('dates a replica behind everything remembered by the oldest probe, across the ring', () => {
    const history = new WalHistory(3)
    for (let i = 1; i <= 5; i++) history.record(i * 1000, BigInt(i * 100))
    // Remembered: 300n@3000, 400n@4000, 500n@5000.
    assert.equal(history.behindSince(50n), 3000)
    assert.equal(history.behindSince(450n), 4000)
  })
})
