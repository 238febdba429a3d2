import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { constants } from 'node:fs'
import { link, mkdtemp, open as openFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GeoDatabaseError } from '../../plugins/geoip/errors/geo-database-error.js'
import { GeoResolver } from '../../plugins/geoip/geo-resolver.js'
import { geoRegion } from '../../plugins/geoip/geo-region.js'
import { InvalidOptionError } from '../../src/index.js'
import { MmdbUint, writeMmdb, type MmdbEntry } from '../support/mmdb-writer.js'

/** GeoIP2-City-shaped records, as MaxMind's own test data has them. */
function cityRecord(continent: string, country: string, subdivision?: string) {
  return {
    continent: { code: continent, geoname_id: new MmdbUint(1, 4), names: { en: continent } },
    country: { iso_code: country, geoname_id: new MmdbUint(2, 4), names: { en: country } },
    ...(subdivision ? { subdivisions: [{ iso_code: subdivision, names: { en: subdivision } }] } : {}),
  }
}

const CITY: MmdbEntry[] = [
  { network: '81.2.69.0/24', data: cityRecord('EU', 'GB', 'ENG') },
  { network: '216.160.83.0/24', data: cityRecord('NA', 'US', 'WA') },
  { network: '67.43.156.0/24', data: cityRecord('NA', 'US', 'NY') },
  { network: '2a02:c7f::/32', data: cityRecord('EU', 'GB') },
  { network: '2001:218::/32', data: cityRecord('AS', 'JP', '13') },
  { network: '89.160.20.0/24', data: cityRecord('EU', 'SE') },
]
const RULES = [
  { region: 'us-west', subdivisions: ['US-WA', 'US-CA'] },
  { region: 'us-east', countries: ['US'] },
  { region: 'eu-north', countries: ['SE'] },
  { region: 'eu-west', continents: ['EU'] },
  { region: 'apac', continents: ['AS', 'OC'] },
]

describe('GeoResolver on fixture databases', () => {
  let dir: string
  const open: GeoResolver[] = []
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geo-resolver-'))
  })
  afterEach(() => {
    while (open.length) open.pop()!.close()
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  async function resolver(entries: readonly MmdbEntry[], name: string, databaseType = 'GeoIP2-City', extra: { watch?: boolean; cacheSize?: number } = {}) {
    const path = join(dir, name)
    await writeFile(path, writeMmdb(entries, { databaseType }))
    const geo = await GeoResolver.open({ database: path, rules: RULES, defaultRegion: 'global', watch: false, ...extra })
    open.push(geo)
    return { geo, path }
  }

  it('resolves IPv4, IPv6 and IPv4-mapped IPv6 in a City database, the most specific rule winning', async () => {
    const { geo } = await resolver(CITY, 'city.mmdb')
    const at = (ip: string) => {
      const { country, continent, subdivision, region, reason } = geo.lookup(ip)
      return { country, continent, subdivision, region, reason }
    }
    assert.deepEqual(at('216.160.83.56'), { country: 'US', continent: 'NA', subdivision: 'WA', region: 'us-west', reason: 'found' })
    assert.deepEqual(at('67.43.156.1'), { country: 'US', continent: 'NA', subdivision: 'NY', region: 'us-east', reason: 'found' })
    assert.deepEqual(at('89.160.20.112'), { country: 'SE', continent: 'EU', subdivision: undefined, region: 'eu-north', reason: 'found' })
    assert.deepEqual(at('81.2.69.142'), { country: 'GB', continent: 'EU', subdivision: 'ENG', region: 'eu-west', reason: 'found' })
    assert.deepEqual(at('2a02:c7f:1::5'), { country: 'GB', continent: 'EU', subdivision: undefined, region: 'eu-west', reason: 'found' })
    assert.deepEqual(at('2001:218:1::1'), { country: 'JP', continent: 'AS', subdivision: '13', region: 'apac', reason: 'found' })
    assert.equal(geo.lookup('::ffff:81.2.69.142').country, 'GB')
    assert.equal(geo.lookup('::ffff:81.2.69.142').ip, '81.2.69.142')
    assert.deepEqual(at('::ffff:5102:458e'), at('81.2.69.142'), 'IPv4-mapped written in hex is the same address')
    assert.equal(geo.lookup('::FFFF:5102:458E').ip, '81.2.69.142')
    assert.deepEqual(at('8.8.8.8'), { country: undefined, continent: undefined, subdivision: undefined, region: 'global', reason: 'not-found' })
  })

  it('reads flat country_code databases, deriving the continent from the country', async () => {
    const { geo } = await resolver([
      { network: '81.2.69.0/24', data: { country_code: 'GB' } },
      { network: '216.160.83.0/24', data: { country_code: 'US' } },
      { network: '1.0.16.0/24', data: { country_code: 'JP' } },
      { network: '5.5.5.0/24', data: { country_code: 'ZZ' } },
    ], 'flat.mmdb', 'ip-location-db-country')
    const at = (ip: string) => {
      const { country, continent, region } = geo.lookup(ip)
      return { country, continent, region }
    }
    assert.deepEqual(at('216.160.83.1'), { country: 'US', continent: 'NA', region: 'us-east' })
    assert.deepEqual(at('81.2.69.1'), { country: 'GB', continent: 'EU', region: 'eu-west' }, 'the derived continent lets a continent rule match')
    assert.deepEqual(at('1.0.16.9'), { country: 'JP', continent: 'AS', region: 'apac' })
    assert.deepEqual(at('5.5.5.5'), { country: 'ZZ', continent: undefined, region: 'global' }, 'an unknown code has no continent')
  })

  it('answers the default region with a reason, and never throws, for private, reserved, malformed and empty input', async () => {
    const { geo } = await resolver(CITY, 'city-bad.mmdb')
    const cases: [unknown, string][] = [
      ['10.0.0.1', 'private'], ['192.168.1.20', 'private'], ['::1', 'private'], ['::ffff:192.168.0.1', 'private'],
      ['203.0.113.9', 'reserved'], ['2001:db8::1', 'reserved'],
      ['999.1.1.1', 'invalid'], ['banana', 'invalid'], [{ ip: 1 }, 'invalid'],
      ['', 'empty'], [undefined, 'empty'], [null, 'empty'],
    ]
    for (const [input, reason] of cases) {
      const location = geo.lookup(input)
      assert.deepEqual([location.region, location.reason], ['global', reason], JSON.stringify(input))
    }
    assert.equal(geo.stats.reasons.private, 4)
    assert.equal(geo.stats.reasons.invalid, 3)
    assert.equal(geo.stats.reasons.empty, 3)
  })

  it('caches lookups, least recently used out first', async () => {
    const { geo } = await resolver(CITY, 'city-cache.mmdb', 'GeoIP2-City', { cacheSize: 2 })
    geo.lookup('81.2.69.1')
    geo.lookup('81.2.69.2')
    geo.lookup('81.2.69.1')
    geo.lookup('81.2.69.3')
    geo.lookup('81.2.69.1')
    assert.equal(geo.stats.cacheHits, 2, '.1 stayed; .2 went when .3 came')
    geo.lookup('81.2.69.2')
    assert.equal(geo.stats.cacheHits, 2)
    assert.equal(geo.stats.lookups, 6)
  })

  it('hands out frozen results, deeply, so no caller can change what the cache gives the next one', async () => {
    const path = join(dir, 'city-frozen.mmdb')
    await writeFile(path, writeMmdb(CITY, { databaseType: 'GeoIP2-City' }))
    const brokers = ['mqtts://eu-1.example:8883']
    const geo = await GeoResolver.open({
      database: path, rules: RULES, defaultRegion: 'global', watch: false, cacheSize: 10,
      endpoints: { 'eu-west': { brokers, replicas: ['db-eu'] }, global: { brokers: ['mqtts://global.example:8883'] } },
    })
    open.push(geo)
    brokers.push('mqtt://late.example:1883')
    const attacker = 'mqtt://attacker.example:1883'
    // ESM is strict mode: writing to a frozen object throws instead of being ignored.
    for (const ip of ['81.2.69.1', '8.8.8.8', '10.0.0.1', 'banana']) {
      const location = geo.lookup(ip)
      assert.ok(Object.isFrozen(location) && Object.isFrozen(location.endpoints), ip)
      assert.ok(location.endpoints.brokers !== undefined && Object.isFrozen(location.endpoints.brokers), ip)
      assert.throws(() => ((location as { region: string }).region = 'attacker'), TypeError, ip)
      assert.throws(() => (location.endpoints.brokers as string[]).push(attacker), TypeError, ip)
      assert.throws(() => ((location.endpoints as { brokers: string[] }).brokers = [attacker]), TypeError, ip)
    }
    const again = geo.lookup('81.2.69.1')
    assert.deepEqual([again.region, again.endpoints], ['eu-west', { brokers: ['mqtts://eu-1.example:8883'], replicas: ['db-eu'] }],
      'the cached answer, and the options it came from, unchanged')
    assert.deepEqual(geo.lookup('8.8.8.8').endpoints.brokers, ['mqtts://global.example:8883'])
    assert.ok(Object.isFrozen(geo.endpointsOf('eu-west').replicas) && Object.isFrozen(geo.regions))
  })

  it('changes its answers when the database file is replaced, without a restart', async () => {
    const { geo, path } = await resolver(CITY, 'city-live.mmdb', 'GeoIP2-City', { watch: true })
    assert.equal(geo.lookup('81.2.69.1').region, 'eu-west')
    const reloaded = new Promise<{ ok: boolean }>((resolve) => geo.onReload(resolve))
    // As database updaters do: write a new file beside it, then rename it over the old one.
    const next = join(dir, 'city-live.mmdb.new')
    await writeFile(next, writeMmdb([{ network: '81.2.69.0/24', data: cityRecord('NA', 'US', 'CA') }], { databaseType: 'GeoIP2-City' }))
    await rename(next, path)
    assert.deepEqual(await reloaded, { ok: true })
    assert.deepEqual([geo.lookup('81.2.69.1').country, geo.lookup('81.2.69.1').region], ['US', 'us-west'])
    assert.equal(geo.stats.reloads, 1)
  })

  it('answers hostile input without throwing, and does not cache what cannot be an address', async () => {
    const { geo } = await resolver(CITY, 'city-hostile.mmdb', 'GeoIP2-City', { cacheSize: 100 })
    assert.equal(geo.lookup({ toString() { throw new Error('no') } }).reason, 'invalid')
    assert.equal(geo.lookup((JSON.parse('{"ip":{"toString":1}}') as { ip: unknown }).ip).reason, 'invalid')
    for (let i = 0; i < 3; i++) geo.lookup('x'.repeat(100_000))
    for (let i = 0; i < 3; i++) geo.lookup('not an address')
    assert.equal(geo.stats.cacheHits, 0, 'invalid input is never cached, so it cannot push real entries out')
    geo.lookup('81.2.69.1')
    geo.lookup('81.2.69.1')
    assert.equal(geo.stats.cacheHits, 1)
  })

  it('takes a file replaced again while it was loading the previous replacement', async () => {
    const { geo, path } = await resolver(CITY, 'city-twice.mmdb')
    // The first replacement is a FIFO, so that its load is held open until this test writes it:
    // the second replacement then lands, deterministically, while the first is being read.
    const fifo = join(dir, 'slow.fifo')
    const alias = join(dir, 'slow.fifo.link') // reaches the FIFO after it is renamed over and then replaced
    execFileSync('mkfifo', [fifo])
    await link(fifo, alias)
    await rename(fifo, path)
    let writer: FileHandle | undefined
    try {
      const first = geo.reload()
      writer = await openFile(alias, 'w') // resolves once the resolver has opened the FIFO to read it
      const small = join(dir, 'small.mmdb')
      await writeFile(small, writeMmdb([{ network: '81.2.69.0/24', data: cityRecord('EU', 'FR') }], { databaseType: 'GeoIP2-City' }))
      await rename(small, path)
      const second = geo.reload()
      await writer.write(writeMmdb([{ network: '81.2.69.0/24', data: cityRecord('AS', 'JP') }], { databaseType: 'GeoIP2-City' }))
      await writer.close()
      writer = undefined
      await Promise.all([first, second])
      assert.equal(geo.lookup('81.2.69.1').country, 'FR', 'the file on disk now, not the one the first attempt read')
      assert.equal(geo.stats.reloads, 2)
    } finally {
      // Should the test fail midway, never leave a reader blocked on the FIFO: end it (a no-op when nobody reads).
      await writer?.close()
      await openFile(alias, constants.O_WRONLY | constants.O_NONBLOCK).then((handle) => handle.close(), () => undefined)
    }
  })

  it('keeps the database it has when the replacement is corrupt', async () => {
    const { geo, path } = await resolver(CITY, 'city-corrupt.mmdb')
    await writeFile(path, 'not a database')
    await geo.reload()
    assert.equal(geo.stats.reloadFailures, 1)
    assert.equal(geo.lookup('81.2.69.1').country, 'GB')
  })

  it('fails to open a missing or corrupt file with GeoDatabaseError naming the path, and bad rules with the rule', async () => {
    const missing = join(dir, 'nope.mmdb')
    await assert.rejects(GeoResolver.open({ database: missing, defaultRegion: 'x' }), (e: unknown) =>
      e instanceof GeoDatabaseError && e.path === missing && e.message.includes(missing) && /no such file/.test(e.message))
    const corrupt = join(dir, 'corrupt.mmdb')
    await writeFile(corrupt, Buffer.alloc(64, 7))
    await assert.rejects(GeoResolver.open({ database: corrupt, defaultRegion: 'x' }), (e: unknown) =>
      e instanceof GeoDatabaseError && /is not a MaxMind DB/.test(e.message))
    await assert.rejects(GeoResolver.open({ database: corrupt, defaultRegion: 'x', rules: [{ region: 'eu', countries: ['EUR'] }] }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'geo.rules[0].countries[0]')
  })

  it('reads the real CC0 country database from @ip-location-db, IPv4-mapped addresses included', async () => {
    const database = fileURLToPath(import.meta.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb'))
    const geo = await GeoResolver.open({
      database, defaultRegion: 'global', watch: false,
      rules: [{ region: 'americas', countries: ['US', 'UY'] }, { region: 'europe', countries: ['NL', 'GB'] }, { region: 'apac', countries: ['AU'] }],
    })
    open.push(geo)
    // Addresses of the regional internet registries and a public resolver: where they are registered does not move.
    const expected: [string, string, string][] = [
      ['8.8.8.8', 'US', 'americas'], ['200.3.14.10', 'UY', 'americas'], ['193.0.6.139', 'NL', 'europe'],
      ['202.12.29.205', 'AU', 'apac'], ['196.216.2.1', 'ZA', 'global'], ['2001:4860:4860::8888', 'US', 'americas'],
      ['::ffff:193.0.6.139', 'NL', 'europe'],
    ]
    for (const [ip, country, region] of expected) {
      const location = geo.lookup(ip)
      assert.deepEqual([location.country, location.region, location.reason], [country, region, 'found'], ip)
    }
  })

  it('names bad endpoints and bad geoRegion options', async () => {
    const { geo, path } = await resolver(CITY, 'city-options.mmdb')
    await assert.rejects(GeoResolver.open({ database: path, defaultRegion: 'global', endpoints: { mars: { brokers: ['mqtt://x'] } } }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'geo.endpoints.mars')
    await assert.rejects(GeoResolver.open({ database: path, defaultRegion: 'global', endpoints: { global: { brokers: 'mqtt://x' as never } } }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'geo.endpoints.global.brokers')
    // Issue 15 second review: device-facing URLs went to devices unchecked, a password included.
    for (const [brokers, field] of [[['mqtts://ok.example:8883', 'mqtt://u:s3cret@h:1883'], 'geo.endpoints.global.brokers[1]'], [['javascript:alert(1)'], 'geo.endpoints.global.brokers[0]']] as const) {
      await assert.rejects(GeoResolver.open({ database: path, defaultRegion: 'global', endpoints: { global: { brokers } } }),
        (e: unknown) => e instanceof InvalidOptionError && e.field === field && !e.message.includes('s3cret'))
    }
    assert.throws(() => geoRegion({ ip: {} as never, resolver: geo }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'geoRegion.ip')
    assert.throws(() => geoRegion({ ip: { payload: 'ip' }, resolver: {} as never }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'geoRegion.resolver')
  })
})
