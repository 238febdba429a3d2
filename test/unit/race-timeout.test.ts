import assert from 'node:assert/strict'
import { raceTimeout } from '../../src/routemq/race-timeout.js'

describe('raceTimeout', () => {
  it('gives the promise when it settles in time, its error too', async () => {
    assert.equal(await raceTimeout(Promise.resolve('done'), 1000, () => 'late'), 'done')
    await assert.rejects(raceTimeout(Promise.reject(new Error('boom')), 1000, () => 'late'), /boom/)
  })

  it('gives the fallback, or its throw, when time runs out', async () => {
    const never = new Promise<string>(() => {})
    assert.equal(await raceTimeout(never, 5, () => 'late'), 'late')
    await assert.rejects(raceTimeout(never, 5, (): never => { throw new Error('no answer') }), /no answer/)
  })
})
