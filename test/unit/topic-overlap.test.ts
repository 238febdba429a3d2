import assert from 'node:assert/strict'
import { filtersOverlap, overlappingFilters } from '../../src/routemq/topic-overlap.js'

describe('topic filter overlap', () => {
  const cases: [string, string, boolean][] = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+/c', 'a/b/#', true],
    ['a/#', 'a', true],
    ['#', 'x/y/z', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'b/+', false],
    ['a/b', 'a/c', false],
    ['+/x', '$SYS/x', false],
    ['#', '$SYS/x', false],
    ['$SYS/#', '$SYS/broker', true],
    ['$share/g/a/+', 'a/b', true],
  ]
  for (const [a, b, expected] of cases) {
    it(`${a} ${expected ? 'overlaps' : 'does not overlap'} ${b}`, () => {
      assert.equal(filtersOverlap(a, b), expected)
      assert.equal(filtersOverlap(b, a), expected)
    })
  }

  it('lists every overlapping pair', () => {
    assert.deepEqual(overlappingFilters(['a/+', 'a/b', 'c/d']), [['a/+', 'a/b']])
  })
})
