import assert from 'node:assert/strict'
import { classifyAddress } from '../../plugins/geoip/address-class.js'

describe('classifyAddress', () => {
  const cases: [unknown, string, string][] = [
    ['81.2.69.1', '81.2.69.1', 'public'],
    [' 2a02:c7f:1::7 ', '2a02:c7f:1::7', 'public'],
    ['2A02:C7F::1', '2a02:c7f::1', 'public'],
    ['::ffff:81.2.69.1', '81.2.69.1', 'public'],
    ['[2a02:c7f::1]', '2a02:c7f::1', 'public'],
    ['fe80::1%eth0', 'fe80::1', 'private'],
    ['10.1.2.3', '10.1.2.3', 'private'],
    ['172.20.0.1', '172.20.0.1', 'private'],
    ['192.168.1.1', '192.168.1.1', 'private'],
    ['127.0.0.1', '127.0.0.1', 'private'],
    ['::1', '::1', 'private'],
    ['fd00::5', 'fd00::5', 'private'],
    ['::ffff:10.0.0.1', '10.0.0.1', 'private'],
    ['100.64.0.9', '100.64.0.9', 'private'],
    ['203.0.113.7', '203.0.113.7', 'reserved'],
    ['2001:db8::1', '2001:db8::1', 'reserved'],
    ['224.0.0.1', '224.0.0.1', 'reserved'],
    ['0.0.0.0', '0.0.0.0', 'reserved'],
    ['::', '::', 'reserved'],
    ['', '', 'empty'],
    ['   ', '', 'empty'],
    [undefined, '', 'empty'],
    ['999.1.1.1', '999.1.1.1', 'invalid'],
    ['not an ip', 'not an ip', 'invalid'],
    ['1.2.3', '1.2.3', 'invalid'],
    [42, '42', 'invalid'],
    [' 81.2.69.1\n', '81.2.69.1', 'public'],
    ['::FFFF:5102:4501', '81.2.69.1', 'public'],
    ['081.2.69.1', '081.2.69.1', 'invalid'],
    ['010.0.0.1', '010.0.0.1', 'invalid'],
    ['81.2.69.1%eth0', '81.2.69.1%eth0', 'invalid'],
    ['::ffff:081.2.69.1', '::ffff:081.2.69.1', 'invalid'],
    ['0.0.0.0', '0.0.0.0', 'reserved'],
    ['1'.repeat(5000), '1'.repeat(64), 'invalid'],
  ]
  it('never throws, even for objects that refuse to become strings', () => {
    const hostile = { toString() { throw new Error('no') } }
    assert.deepEqual(classifyAddress(hostile), { address: '[object Object]', kind: 'invalid' })
    assert.deepEqual(classifyAddress(Object.create(null)), { address: '[object Object]', kind: 'invalid' })
    assert.deepEqual(classifyAddress(JSON.parse('{"toString":1}')).kind, 'invalid')
  })
  for (const [input, address, kind] of cases) {
    it(`takes ${String(JSON.stringify(input)).slice(0, 40)} for ${kind}`, () => {
      assert.deepEqual(classifyAddress(input), { address, kind })
    })
  }
})
