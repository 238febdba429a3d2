import assert from 'node:assert/strict'
import { AckSequencer } from '../../src/index.js'

describe('AckSequencer', () => {
  it("sends acknowledgements in arrival order under 'arrival'", () => {
    const sent: number[] = []
    const sequencer = new AckSequencer('arrival')
    const settle = [1, 2, 3].map((id) => sequencer.track(() => sent.push(id)))
    settle[2]!(true)
    settle[1]!(true)
    assert.deepEqual(sent, [], 'held back behind message 1')
    settle[0]!(true)
    assert.deepEqual(sent, [1, 2, 3])
    assert.equal(sequencer.pending, 0)
  })

  it('releases a withheld message without sending it and without blocking later ones', () => {
    const sent: number[] = []
    const sequencer = new AckSequencer('arrival')
    const [a, b] = [1, 2].map((id) => sequencer.track(() => sent.push(id)))
    b!(true)
    a!(false)
    assert.deepEqual(sent, [2])
  })

  it("sends each acknowledgement at once under 'completion'", () => {
    const sent: number[] = []
    const sequencer = new AckSequencer('completion')
    const [a, b] = [1, 2].map((id) => sequencer.track(() => sent.push(id)))
    b!(true)
    a!(true)
    assert.deepEqual(sent, [2, 1])
  })

  it('drops the acknowledgements of a lost connection, also those settled later', () => {
    const sent: number[] = []
    for (const order of ['arrival', 'completion'] as const) {
      const sequencer = new AckSequencer(order)
      const old = sequencer.track(() => sent.push(1))
      sequencer.reset()
      assert.equal(old(true), false)
      const fresh = sequencer.track(() => sent.push(2))
      assert.equal(fresh(true), true)
    }
    assert.deepEqual(sent, [2, 2])
  })

  it('keeps order across many messages settled in reverse', () => {
    const sent: number[] = []
    const sequencer = new AckSequencer('arrival')
    const settle = Array.from({ length: 5000 }, (_, id) => sequencer.track(() => sent.push(id)))
    for (let i = settle.length - 1; i >= 0; i--) settle[i]!(true)
    assert.deepEqual(sent, Array.from({ length: 5000 }, (_, id) => id))
  })
})

describe('AckSequencer.whenIdle', () => {
  for (const order of ['arrival', 'completion'] as const) {
    it(`resolves once every tracked message settled (${order})`, async () => {
      const sequencer = new AckSequencer(order)
      await sequencer.whenIdle()
      const [a, b] = [1, 2].map(() => sequencer.track(() => undefined))
      let idle = false
      const waiting = sequencer.whenIdle().then(() => { idle = true })
      b!(true)
      await Promise.resolve()
      assert.equal(idle, false)
      assert.equal(sequencer.unsettled, 1)
      a!(false)
      await waiting
      assert.equal(sequencer.unsettled, 0)
    })
  }

  it('resolves when the connection is lost with messages unsettled', async () => {
    const sequencer = new AckSequencer('arrival')
    sequencer.track(() => undefined)
    const waiting = sequencer.whenIdle()
    assert.equal(sequencer.reset(), 1)
    await waiting
  })
})
