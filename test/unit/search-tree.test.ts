import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { Reader, type Response } from 'maxmind'
import { ipv6Groups } from '../../plugins/geoip/address-class.js'
import { continentOfCountry } from '../../plugins/geoip/continent-of-country.js'
import { NOT_FOUND, SearchTree } from '../../plugins/geoip/search-tree.js'
import { writeMmdb, type MmdbEntry } from '../support/mmdb-writer.js'
import { seededRandom } from '../support/seeded-random.js'

const hex = (groups: ArrayLike<number>) => Array.from(groups, (g) => g.toString(16)).join(':')

describe('SearchTree', () => {
  it('reads 28- and 32-bit records as the format spec lays them out, top bits included', () => {
    // 28 bits: left = 0x0ABCDEF1 (low 24 bits, then 0xA in the middle byte's high nibble), right = 0x0B123456.
    const node28 = Buffer.from([0xbc, 0xde, 0xf1, 0xab, 0x12, 0x34, 0x56])
    const tree28 = new SearchTree(node28, { nodeCount: 0x0a000000, recordSize: 28, ipVersion: 4 })
    assert.equal(tree28.find4(0x00000000), 0x0abcdef1)
    assert.equal(tree28.find4(0x80000000), 0x0b123456)
    const node32 = Buffer.from([0xf0, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff, 0xfe])
    const tree32 = new SearchTree(node32, { nodeCount: 0x80000000, recordSize: 32, ipVersion: 4 })
    assert.equal(tree32.find4(0), 0xf0000001)
    assert.equal(tree32.find4(0xffffffff), 0xfffffffe)
    assert.throws(() => new SearchTree(node32, { nodeCount: 1, recordSize: 20, ipVersion: 4 }), /record size 20/)
  })

  for (const recordSize of [24, 28, 32] as const) {
    for (const ipVersion of [4, 6] as const) {
      it(`lands on the record maxmind's Reader returns, or on none, in an IPv${ipVersion} tree of ${recordSize}-bit records`, () => {
        const random = seededRandom(recordSize * 10 + ipVersion)
        const byte = () => Math.floor(random() * 256)
        const entries: MmdbEntry[] = []
        for (let i = 0; i < 400; i++) {
          const prefix = 8 + Math.floor(random() * 21)
          entries.push({ network: `${1 + Math.floor(random() * 4)}.${byte()}.${byte()}.${byte()}/${prefix}`, data: { n: i } })
        }
        if (ipVersion === 6) for (let i = 0; i < 100; i++) entries.push({ network: `2a0${Math.floor(random() * 4)}:${byte().toString(16)}::/${24 + Math.floor(random() * 40)}`, data: { n: 1000 + i } })
        const db = writeMmdb(entries.map((e) => ({ ...e, network: canonical(e.network) })), { databaseType: 'test', ipVersion, recordSize })
        const reader = new Reader<Response>(db)
        assert.equal(reader.metadata.recordSize, recordSize)
        const tree = new SearchTree(db, reader.metadata)
        const recordOf = new Map<number, unknown>()
        let found = 0
        for (let i = 0; i < 3000; i++) {
          const v4 = ((1 + Math.floor(random() * 4)) * 0x1000000 + Math.floor(random() * 0x1000000)) >>> 0
          const dotted = `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`
          check(tree.find4(v4), reader.get(dotted), dotted)
          if (ipVersion === 6) {
            const v6 = `2a0${Math.floor(random() * 4)}:${byte().toString(16)}:${byte().toString(16)}::${byte().toString(16)}`
            check(tree.find6(ipv6Groups(v6)), reader.get(v6), v6)
          }
        }
        function check(pointer: number, record: unknown, address: string): void {
          assert.equal(pointer === NOT_FOUND, record === null, address)
          if (pointer === NOT_FOUND) return
          found++
          if (recordOf.has(pointer)) assert.deepEqual(recordOf.get(pointer), record, `one pointer, one record (${address})`)
          recordOf.set(pointer, record)
        }
        assert.ok(found > 300, `enough addresses landed on records to mean something (${found})`)
        assert.ok(recordOf.size > 50, `and on many different ones (${recordOf.size})`)
        if (ipVersion === 4) assert.equal(tree.find6(ipv6Groups('2a00::1')), NOT_FOUND, 'an IPv4 tree has no IPv6 addresses')
      })
    }
  }
})

describe('SearchTree on the real CC0 country database', () => {
  it("finds a record exactly where maxmind's Reader does, for 20 000 addresses of both families", async () => {
    const db = await readFile(fileURLToPath(import.meta.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb')))
    const reader = new Reader<Response>(db)
    const tree = new SearchTree(db, reader.metadata)
    const random = seededRandom(99)
    const countryOf = new Map<number, string>()
    let found = 0
    for (let i = 0; i < 10_000; i++) {
      const v4 = Math.floor(random() * 0x100000000) >>> 0
      const dotted = `${v4 >>> 24}.${(v4 >>> 16) & 255}.${(v4 >>> 8) & 255}.${v4 & 255}`
      const groups = Uint16Array.from({ length: 8 }, (_, g) => (g === 0 ? 0x2000 + Math.floor(random() * 0x1000) : Math.floor(random() * 0x10000)))
      for (const [pointer, address] of [[tree.find4(v4), dotted], [tree.find6(groups), hex(groups)]] as const) {
        const record = reader.get(address) as { country_code?: string } | null
        assert.equal(pointer === NOT_FOUND, record === null, address)
        if (pointer === NOT_FOUND) continue
        found++
        const country = record!.country_code!
        assert.equal(countryOf.get(pointer) ?? country, country, `one pointer, one country (${address})`)
        countryOf.set(pointer, country)
      }
    }
    assert.ok(found > 5_000 && countryOf.size > 100, `${found} found, ${countryOf.size} records`)
  })
})

/** The network address with its host bits cleared, as the writer wants it. */
function canonical(network: string): string {
  const [address, prefix] = network.split('/') as [string, string]
  if (address.includes(':')) return network
  const bits = Number(prefix)
  const value = address.split('.').reduce((acc, part) => acc * 256 + Number(part), 0)
  const masked = bits === 0 ? 0 : (value & ((0xffffffff << (32 - bits)) >>> 0)) >>> 0
  return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${bits}`
}

describe('ipv6Groups', () => {
  it('expands every way an IPv6 address can be written', () => {
    const cases: [string, string][] = [
      ['::', '0:0:0:0:0:0:0:0'],
      ['::1', '0:0:0:0:0:0:0:1'],
      ['2001:db8::8a2e:370:7334', '2001:db8:0:0:0:8a2e:370:7334'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8:0:0:1:0:0:1'],
      ['fe80::', 'fe80:0:0:0:0:0:0:0'],
      ['::ffff:81.2.69.142', '0:0:0:0:0:ffff:5102:458e'],
      ['::81.2.69.142', '0:0:0:0:0:0:5102:458e'],
      ['1::81.2.69.142', '1:0:0:0:0:0:5102:458e'],
      ['1:2:3:4:5:6:81.2.69.142', '1:2:3:4:5:6:5102:458e'],
      ['FFFF::Ab', 'ffff:0:0:0:0:0:0:ab'],
    ]
    for (const [input, expected] of cases) assert.equal(hex(ipv6Groups(input)), expected, input)
  })
})

describe('continentOfCountry', () => {
  it("places countries on MaxMind's continents, in any case, and knows what it does not know", () => {
    assert.equal(continentOfCountry('DE'), 'EU')
    assert.equal(continentOfCountry('br'), 'SA')
    assert.equal(continentOfCountry('RU'), 'EU')
    assert.equal(continentOfCountry('TR'), 'AS')
    assert.equal(continentOfCountry('AU'), 'OC')
    assert.equal(continentOfCountry('AQ'), 'AN')
    assert.equal(continentOfCountry('ZA'), 'AF')
    assert.equal(continentOfCountry('US'), 'NA')
    assert.equal(continentOfCountry('ZZ'), undefined)
  })
})
