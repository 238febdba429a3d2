import assert from 'node:assert/strict'
import { Reader } from 'maxmind'
import { MmdbUint, writeMmdb } from '../support/mmdb-writer.js'

describe('writeMmdb (test support)', () => {
  const city = {
    continent: { code: 'EU', geoname_id: new MmdbUint(6255148, 4), names: { en: 'Europe' } },
    country: { iso_code: 'GB', geoname_id: new MmdbUint(2635167, 4), names: { en: 'United Kingdom', de: 'Vereinigtes Königreich' } },
    subdivisions: [{ iso_code: 'ENG', names: { en: 'England' } }],
    location: { latitude: 51.5142, longitude: -0.0931, accuracy_radius: new MmdbUint(100, 2), time_zone: 'Europe/London' },
    traits: { is_anycast: false },
  }

  it('writes a GeoIP2-style database that the maxmind reader answers from, for IPv4, IPv6 and IPv4-mapped IPv6', () => {
    const db = writeMmdb([
      { network: '81.2.69.0/24', data: city },
      { network: '81.2.69.160/27', data: { country: { iso_code: 'IE' } } },
      { network: '2001:db8::/32', data: { country: { iso_code: 'JP' }, continent: { code: 'AS' } } },
      { network: '10.0.0.0/8', data: { country: { iso_code: 'ZZ' } } },
    ], { databaseType: 'GeoIP2-City', languages: ['en', 'de'] })
    const reader = new Reader<Record<string, unknown>>(db)
    assert.deepEqual(reader.get('81.2.69.1'), {
      ...city,
      continent: { code: 'EU', geoname_id: 6255148, names: { en: 'Europe' } },
      country: { iso_code: 'GB', geoname_id: 2635167, names: { en: 'United Kingdom', de: 'Vereinigtes Königreich' } },
      location: { latitude: 51.5142, longitude: -0.0931, accuracy_radius: 100, time_zone: 'Europe/London' },
    })
    assert.deepEqual(reader.get('81.2.69.170'), { country: { iso_code: 'IE' } }, 'the more specific network wins')
    assert.deepEqual(reader.getWithPrefixLength('81.2.69.170')[1], 27)
    assert.deepEqual(reader.get('81.2.69.191'), { country: { iso_code: 'IE' } }, 'the last address of the /27')
    for (const ip of ['81.2.69.100', '81.2.69.159', '81.2.69.192']) {
      assert.equal((reader.get(ip) as { country: { iso_code: string } }).country.iso_code, 'GB', `${ip}: the rest of the /24 keeps its record`)
    }
    assert.deepEqual(reader.get('2001:db8:1::7'), { country: { iso_code: 'JP' }, continent: { code: 'AS' } })
    assert.equal((reader.get('::ffff:81.2.69.1') as { country: { iso_code: string } }).country.iso_code, 'GB')
    assert.equal(reader.get('8.8.8.8'), null)
    assert.equal(reader.get('2001:db9::1'), null)
    assert.equal(reader.metadata.databaseType, 'GeoIP2-City')
    assert.equal(reader.metadata.ipVersion, 6)
    assert.deepEqual(reader.metadata.languages, ['en', 'de'])
    assert.equal(reader.metadata.binaryFormatMajorVersion, 2)
  })

  it('writes a flat country database and an IPv4-only one', () => {
    const flat = new Reader<Record<string, unknown>>(writeMmdb([
      { network: '1.0.0.0/24', data: { country_code: 'AU' } },
      { network: '2c0f:f248::/32', data: { country_code: 'ZA' } },
    ], { databaseType: 'ip-location-db-country' }))
    assert.deepEqual(flat.get('1.0.0.77'), { country_code: 'AU' })
    assert.deepEqual(flat.get('2c0f:f248::1'), { country_code: 'ZA' })
    const v4 = new Reader<Record<string, unknown>>(writeMmdb([{ network: '1.0.0.0/24', data: { country_code: 'AU' } }], {
      databaseType: 'v4', ipVersion: 4,
    }))
    assert.deepEqual(v4.get('1.0.0.1'), { country_code: 'AU' })
    assert.equal(v4.metadata.ipVersion, 4)
  })

  it('encodes long strings, arrays, doubles, booleans, bytes and wide integers', () => {
    const long = 'x'.repeat(70_000)
    const medium = 'y'.repeat(300)
    const data = {
      short: 'a'.repeat(28), edge: 'b'.repeat(29), medium, long,
      list: [1, 2.5, true, false, 'z'], bytes: Buffer.from([1, 2, 3]),
      u16: new MmdbUint(65535, 2), u64: new MmdbUint(2n ** 63n, 8), u128: new MmdbUint(2n ** 100n, 16), zero: 0,
    }
    const reader = new Reader<Record<string, unknown>>(writeMmdb([{ network: '192.0.2.0/24', data }], { databaseType: 'types' }))
    const read = reader.get('192.0.2.1')!
    assert.equal(read['short'], data.short)
    assert.equal(read['edge'], data.edge)
    assert.equal(read['medium'], medium)
    assert.equal((read['long'] as string).length, 70_000)
    assert.deepEqual(read['list'], [1, 2.5, true, false, 'z'])
    assert.deepEqual(read['bytes'], Buffer.from([1, 2, 3]))
    assert.equal(read['u16'], 65535)
    assert.equal(String(read['u64']), String(2n ** 63n))
    assert.equal(String(read['u128']), String(2n ** 100n))
    assert.equal(read['zero'], 0)
  })

  it('is byte-for-byte reproducible', () => {
    const entries = [{ network: '81.2.69.0/24', data: city }]
    assert.deepEqual(writeMmdb(entries, { databaseType: 'x' }), writeMmdb(entries, { databaseType: 'x' }))
  })
})
