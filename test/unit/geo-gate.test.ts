import assert from 'node:assert/strict'
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  DeviceRedirects, GeoResolver, HealthMonitor, InvalidOptionError, LoadBalancingMetrics, MessageContext, brokerPoolHealth, geoGate, geoRegion,
  isGeoBlockedError, isUntrustedLocationError, type GeoLocation, type BrokerPoolLike,
} from '../../src/index.js'
import { rootContainerForTests } from '../support/inbound-message.js'
import { writeMmdb } from '../support/mmdb-writer.js'
import { parsePrometheusText } from '../support/prometheus-text.js'

function context(geo?: Partial<GeoLocation>): MessageContext {
  const ctx = new MessageContext({
    topic: 'devices/d1/cmd', params: { id: 'd1' }, payload: undefined, raw: Buffer.alloc(0), qos: 1, retain: false, dup: false,
    properties: undefined, broker: 'test',
    route: { pattern: 'devices/{id}/cmd', subscription: 'devices/+/cmd', name: undefined },
    container: rootContainerForTests(), publish: async () => {},
  })
  if (geo) ctx.state.geo = { ip: '1.2.3.4', continent: undefined, country: undefined, subdivision: undefined, region: 'global', endpoints: {}, reason: 'found', ...geo }
  return ctx
}
const through = async (gate: ReturnType<typeof geoGate>, geo?: Partial<GeoLocation>): Promise<unknown> => {
  try {
    return await gate.handle(context(geo), async () => 'handled')
  } catch (error) {
    return isGeoBlockedError(error) ? `blocked:${error.reason}` : error
  }
}

describe('geoGate', () => {
  it('with a deny list, drops the listed countries, continents and regions, and lets unknown places in by default', async () => {
    const gate = geoGate({ deny: { countries: ['kp'], continents: ['AN'], regions: ['sanctioned'] } })
    assert.equal(await through(gate, { country: 'KP', continent: 'AS', region: 'apac' }), 'blocked:country')
    assert.equal(await through(gate, { country: 'AQ', continent: 'AN' }), 'blocked:continent')
    assert.equal(await through(gate, { country: 'IR', continent: 'AS', region: 'sanctioned' }), 'blocked:region')
    assert.equal(await through(gate, { country: 'DE', continent: 'EU', region: 'eu' }), 'handled')
    assert.equal(await through(gate, { reason: 'private', region: 'sanctioned' }), 'handled', 'an unknown place is not in a region, even the default one')
    const strict = geoGate({ deny: { countries: ['KP'] }, unknown: 'deny' })
    assert.equal(await through(strict, { reason: 'not-found' }), 'blocked:unknown-location')
    assert.deepEqual(gate.stats, { passed: 2, blocked: 3, blockedBy: { country: 1, region: 1, continent: 1, 'not-allowed': 0, 'unknown-location': 0 } })
  })

  it('with an allow list, lets only the listed places in, and no unknown ones unless told to', async () => {
    const gate = geoGate({ allow: { regions: ['eu'], countries: ['CH'] } })
    assert.equal(await through(gate, { country: 'FR', continent: 'EU', region: 'eu' }), 'handled')
    assert.equal(await through(gate, { country: 'CH', continent: 'EU', region: 'global' }), 'handled')
    assert.equal(await through(gate, { country: 'US', continent: 'NA', region: 'us' }), 'blocked:not-allowed')
    assert.equal(await through(gate, { reason: 'invalid', region: 'eu' }), 'blocked:unknown-location', 'the default region does not vouch for an unknown place')
    const lenient = geoGate({ allow: { regions: ['eu'] }, unknown: 'allow' })
    assert.equal(await through(lenient, { reason: 'private' }), 'handled')
  })

  it('says what is wrong with its options, naming the field, and what a message without a location lacks', async () => {
    const field = (fn: () => unknown) => {
      try {
        fn()
      } catch (error) {
        return error instanceof InvalidOptionError ? error.field : error
      }
      return 'no error'
    }
    assert.equal(field(() => geoGate({} as never)), 'geoGate')
    assert.equal(field(() => geoGate({ allow: { countries: ['DE'] }, deny: { countries: ['KP'] } } as never)), 'geoGate')
    assert.equal(field(() => geoGate({ deny: { countries: ['DEU'] } })), 'geoGate.deny.countries[0]')
    assert.equal(field(() => geoGate({ allow: { continents: ['EU', 'XX'] } })), 'geoGate.allow.continents[1]')
    assert.equal(field(() => geoGate({ allow: {} })), 'geoGate.allow')
    assert.equal(field(() => geoGate({ allow: { regions: ['eu'] }, unknown: 'maybe' as never })), 'geoGate.unknown')
    const gate = geoGate({ allow: { regions: ['eu'] } })
    const error = await through(gate)
    assert.ok(error instanceof InvalidOptionError && /put geoRegion/.test(error.message), String(error))
  })
})

describe('DeviceRedirects and the geo health check and metrics', () => {
  let dir: string
  let database: string
  let resolver: GeoResolver
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'geo-gate-'))
    database = join(dir, 'city.mmdb')
    await writeFile(database, writeMmdb([
      { network: '81.2.69.0/24', data: { continent: { code: 'EU' }, country: { iso_code: 'GB' } } },
      { network: '216.160.83.0/24', data: { continent: { code: 'NA' }, country: { iso_code: 'US' } } },
    ], { databaseType: 'GeoIP2-City', buildEpoch: Math.floor(Date.now() / 1000) - 3 * 86_400 }))
    resolver = await GeoResolver.open({
      database, watch: false, defaultRegion: 'eu',
      rules: [{ region: 'eu', continents: ['EU'] }, { region: 'us', countries: ['US'] }, { region: 'apac', continents: ['AS'] }],
      endpoints: {
        eu: { brokers: ['mqtts://eu-1.example:8883', 'mqtts://eu-2.example:8883', 'mqtts://eu-3.example:8883'] },
        us: { brokers: ['mqtts://us-1.example:8883', 'mqtts://us-2.example:8883'] },
      },
    })
  })
  after(async () => {
    resolver.close()
    await rm(dir, { recursive: true, force: true })
  })

  it("lists the region's healthy brokers in order, then its unknown ones, then other regions' healthy ones, never a down one", () => {
    const states: Record<string, 'healthy' | 'unhealthy' | 'unknown'> = {
      'mqtts://eu-1.example:8883': 'unhealthy', 'mqtts://eu-2.example:8883': 'unknown', 'mqtts://eu-3.example:8883': 'healthy',
      'mqtts://us-1.example:8883': 'healthy', 'mqtts://us-2.example:8883': 'unhealthy',
    }
    const redirects = new DeviceRedirects({ resolver, health: (url) => states[url] ?? 'unknown' })
    assert.deepEqual(redirects.brokersFor('81.2.69.1'), {
      ip: '81.2.69.1', region: 'eu', reason: 'found',
      brokers: ['mqtts://eu-3.example:8883', 'mqtts://eu-2.example:8883', 'mqtts://us-1.example:8883'],
    })
    assert.deepEqual(redirects.brokersFor('216.160.83.1').brokers, ['mqtts://us-1.example:8883', 'mqtts://eu-3.example:8883'])
    assert.deepEqual(redirects.brokersFor('10.0.0.1').region, 'eu', 'a private address gets the default region')
    assert.deepEqual(new DeviceRedirects({ resolver, health: () => 'healthy', otherRegions: false }).brokersFor('216.160.83.1').brokers,
      ['mqtts://us-1.example:8883', 'mqtts://us-2.example:8883'])
    const throwing = new DeviceRedirects({ resolver, health: () => { throw new Error('boom') } })
    assert.equal(throwing.brokersFor('216.160.83.1').brokers.length, 2, 'a failing health function counts as unknown')
    assert.throws(() => new DeviceRedirects({ resolver, health: 'yes' as never }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'redirects.health')
  })

  // Issue 15 second review: a typo or wrong type was accepted, and a lookalike resolver failed later with a TypeError.
  it('checks its options by shape and takes only a real GeoResolver', () => {
    const refused = (options: unknown): { field: string; message: string } => {
      try {
        new DeviceRedirects(options as never)
      } catch (error) {
        if (error instanceof InvalidOptionError) return { field: error.field, message: error.message }
        throw error
      }
      assert.fail('accepted')
    }
    const typo = refused({ resolver, otherRegion: false })
    assert.equal(typo.field, 'redirects.otherRegion')
    assert.match(typo.message, /did you mean redirects\.otherRegions\?/)
    assert.equal(refused({ resolver, otherRegions: 'no' }).field, 'redirects.otherRegions')
    assert.equal(refused({ resolver: { lookup() {} } }).field, 'redirects.resolver')
    assert.equal(refused({ resolver: { lookup: () => resolver.lookup('1.1.1.1'), regions: [], endpointsOf: () => ({}) } }).field, 'redirects.resolver')
    assert.equal(refused({}).field, 'redirects.resolver')
    assert.equal(refused(null).field, 'redirects')
  })

  it('trusts only addresses and the locations its own resolver made, refusing anything else with UntrustedLocationError', async () => {
    const redirects = new DeviceRedirects({ resolver, health: () => 'healthy' })
    const attacker = 'mqtt://attacker.example:1883'
    const real = resolver.lookup('81.2.69.1')
    assert.deepEqual(redirects.brokersFor(real).brokers.slice(0, 3), ['mqtts://eu-1.example:8883', 'mqtts://eu-2.example:8883', 'mqtts://eu-3.example:8883'])
    assert.equal(redirects.brokersFor('216.160.83.1').region, 'us')
    assert.deepEqual([redirects.brokersFor(undefined).region, redirects.brokersFor(undefined).reason], ['eu', 'empty'], 'no address: the default region')
    assert.deepEqual([redirects.brokersFor('not an ip').region, redirects.brokersFor('not an ip').reason], ['eu', 'invalid'])

    const other = await GeoResolver.open({ database, watch: false, defaultRegion: 'eu', endpoints: { eu: { brokers: [attacker] } } })
    try {
      const refused: [string, unknown][] = [
        ['a hand-made location', { ip: '81.2.69.1', continent: 'EU', country: 'GB', subdivision: undefined, region: 'eu', reason: 'found', endpoints: { brokers: [attacker] } }],
        ['a copy of a real one with other endpoints', { ...real, endpoints: { brokers: [attacker] } }],
        ['an exact copy of a real one', { ...real }],
        ['a real one sent through JSON, as a device payload would carry it', JSON.parse(JSON.stringify(real))],
        ['an object made on a real one\'s prototype', Object.assign(Object.create(Object.getPrototypeOf(real) as object), { ...real, endpoints: { brokers: [attacker] } })],
        ['a location another resolver made', other.lookup('81.2.69.1')],
        ['endpoints of null', { region: 'eu', reason: 'found', endpoints: null }],
        ['brokers that are no list', { region: 'eu', reason: 'found', endpoints: { brokers: 5 } }],
        ['a region that is no string', { region: 1, reason: 'found', endpoints: {} }],
        ['a number', 42],
        ['a boolean', true],
        ['a list of addresses', ['81.2.69.1']],
        ['a function', () => '81.2.69.1'],
        ['a symbol', Symbol('ip')],
        ['an object that throws when made a string', { toString() { throw new Error('no') } }],
      ]
      for (const [name, input] of refused) {
        assert.throws(() => redirects.brokersFor(input), (e: unknown) =>
          isUntrustedLocationError(e) && e.code === 'UNTRUSTED_LOCATION' && /IP address/.test(e.message) && /geoRegion/.test(e.message) && !e.message.includes('attacker'), name)
      }
    } finally {
      other.close()
    }
  })

  it("reads a broker pool's probes by host (the same port first) or by alias", () => {
    const pool: BrokerPoolLike & { states: Record<string, 'healthy' | 'unhealthy' | 'unknown'> } = {
      options: { brokers: [{ id: 'eu-1', host: 'eu-1.example', port: 1883 }, { id: 'eu-1-tls', host: 'eu-1.example', port: 8883 }, { id: 'b', host: '10.0.0.5', port: 1883 }] },
      states: { 'eu-1': 'unhealthy', 'eu-1-tls': 'healthy', b: 'healthy' },
      get stats() {
        return { brokers: Object.entries(this.states).map(([id, state]) => ({ id, state })) }
      },
    }
    const health = brokerPoolHealth(pool, { 'mqtts://public.example:8883': 'b' })
    assert.equal(health('mqtts://eu-1.example:8883'), 'healthy', 'the broker on the same host and port')
    assert.equal(health('mqtt://EU-1.example:1883'), 'unhealthy')
    assert.equal(health('wss://eu-1.example/mqtt'), 'unhealthy', 'no port: the first broker on the host')
    assert.equal(health('mqtts://public.example:8883'), 'healthy', 'by alias')
    assert.equal(health('mqtts://elsewhere.example:8883'), 'unknown')
    assert.equal(health('not a url'), 'unknown')
    pool.states['eu-1-tls'] = 'unhealthy'
    assert.equal(health('mqtts://eu-1.example:8883'), 'unhealthy', 'read live, not remembered')
    assert.throws(() => brokerPoolHealth(pool, { 'mqtts://x.example:1': 'nope' }), (e: unknown) => e instanceof InvalidOptionError && /no broker "nope"/.test(e.message))
  })

  it('has a non-critical health check that fails while the file cannot replace the database, and counts lookups and blocks in /metrics', async () => {
    const monitor = new HealthMonitor()
    monitor.registerSource(resolver)
    await monitor.start()
    try {
      let status = monitor.summary().checks.find((c) => c.name === 'geo')!
      assert.deepEqual([status.state, status.critical, status.observation?.observedUnit], ['healthy', false, 'days'])
      assert.ok(Math.abs(Number(status.observation?.observedValue) - 3) < 0.2, `age ${status.observation?.observedValue}`)

      const changed = new Promise<void>((resolve) => monitor.onChange((event) => event.name === 'geo' && resolve()))
      await unlink(database)
      await resolver.reload()
      await monitor.check('geo')
      await changed
      status = monitor.summary().checks.find((c) => c.name === 'geo')!
      assert.equal(status.state, 'unhealthy')
      assert.match(status.lastError ?? '', /answering from the database loaded before/)
      assert.equal(resolver.lookup('81.2.69.9').country, 'GB', 'lookups carry on from memory')
      assert.equal(monitor.summary().status, 'degraded', 'degraded, not unhealthy: the check is not critical')

      // A good file back in place: the check loads it and passes again.
      await writeFile(database, writeMmdb([
        { network: '81.2.69.0/24', data: { continent: { code: 'EU' }, country: { iso_code: 'FR' } } },
        { network: '216.160.83.0/24', data: { continent: { code: 'NA' }, country: { iso_code: 'US' } } },
      ], { databaseType: 'GeoIP2-City' }))
      assert.equal((await monitor.check('geo')).state, 'healthy')
      assert.equal(resolver.lookup('81.2.69.10').country, 'FR', 'the new file was loaded')
    } finally {
      monitor.stop()
    }

    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    metrics.observeLookups(resolver)
    const gate = geoGate({ deny: { countries: ['US'] }, name: 'no-us' })
    metrics.observeGeoGate(gate)
    const mw = geoRegion({ ip: { payload: 'ip' }, resolver })
    for (const ip of ['216.160.83.1', '81.2.69.1', 'nonsense']) {
      const ctx = new MessageContext({
        topic: 't', params: {}, payload: { ip }, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false, properties: undefined, broker: 'b',
        route: { pattern: 't', subscription: 't', name: undefined }, container: rootContainerForTests(), publish: async () => {},
      })
      await Promise.resolve(mw.handle(ctx, (c) => gate.handle(c, async () => undefined))).catch(() => undefined)
    }
    const families = parsePrometheusText(await metrics.text())
    const sample = (name: string, labels: Record<string, string>) =>
      families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
    assert.equal(sample('routemq_geo_gate_blocked_total', { gate: 'no-us', reason: 'country' }), 1)
    assert.equal(sample('routemq_geo_gate_passed_total', { gate: 'no-us' }), 2)
    assert.equal(sample('routemq_geo_lookups_total', { reason: 'invalid' }), resolver.stats.reasons.invalid)
    assert.ok((sample('routemq_geo_lookups_total', { reason: 'found' }) ?? 0) >= 2)
  })
})
