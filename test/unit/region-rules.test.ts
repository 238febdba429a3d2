import assert from 'node:assert/strict'
import { RegionRules } from '../../plugins/geoip/region-rules.js'
import { InvalidOptionError } from '../../src/index.js'

describe('RegionRules', () => {
  const rules = RegionRules.compile({
    defaultRegion: 'global',
    rules: [
      { region: 'us-west', subdivisions: ['US-CA', 'us-or'] },
      { region: 'us-east', countries: ['US', 'ca'] },
      { region: 'eu', continents: ['EU'], countries: ['TR'] },
      { region: 'apac', continents: ['AS', 'OC'] },
    ],
  })

  it('lets the most specific rule win: subdivision, then country, then continent, then the default', () => {
    assert.deepEqual(rules.match({ continent: 'NA', country: 'US', subdivision: 'CA' }), { region: 'us-west', matchedBy: 'subdivision' })
    assert.deepEqual(rules.match({ continent: 'NA', country: 'US', subdivision: 'US-OR' }), { region: 'us-west', matchedBy: 'subdivision' })
    assert.deepEqual(rules.match({ continent: 'NA', country: 'US', subdivision: 'NY' }), { region: 'us-east', matchedBy: 'country' })
    assert.deepEqual(rules.match({ continent: 'NA', country: 'CA', subdivision: 'CA' }), { region: 'us-east', matchedBy: 'country' }, 'CA-CA is no US-CA')
    assert.deepEqual(rules.match({ continent: 'AS', country: 'TR' }), { region: 'eu', matchedBy: 'country' }, 'a country beats its continent')
    assert.deepEqual(rules.match({ continent: 'eu', country: 'de' }), { region: 'eu', matchedBy: 'continent' })
    assert.deepEqual(rules.match({ continent: 'OC' }), { region: 'apac', matchedBy: 'continent' })
    assert.deepEqual(rules.match({ continent: 'SA', country: 'BR' }), { region: 'global', matchedBy: 'default' })
    assert.deepEqual(rules.match({}), { region: 'global', matchedBy: 'default' })
    assert.deepEqual(rules.regions, ['global', 'us-west', 'us-east', 'eu', 'apac'])
  })

  const invalid: [string, unknown, string][] = [
    ['no default region', { rules: [] }, 'geo.defaultRegion'],
    ['a rule without a region', { defaultRegion: 'x', rules: [{ countries: ['DE'] }] }, 'geo.rules[0].region'],
    ['a rule naming nothing', { defaultRegion: 'x', rules: [{ region: 'eu' }] }, 'geo.rules[0]'],
    ['an unknown continent', { defaultRegion: 'x', rules: [{ region: 'eu', continents: ['EUR'] }] }, 'geo.rules[0].continents[0]'],
    ['a three-letter country', { defaultRegion: 'x', rules: [{ region: 'de', countries: ['DEU'] }] }, 'geo.rules[0].countries[0]'],
    ['a subdivision without its country', { defaultRegion: 'x', rules: [{ region: 'w', subdivisions: ['CA'] }] }, 'geo.rules[0].subdivisions[0]'],
    ['a country in two rules', { defaultRegion: 'x', rules: [{ region: 'a', countries: ['DE'] }, { region: 'b', countries: ['FR', 'de'] }] }, 'geo.rules[1].countries[1]'],
    ['codes that are not a list', { defaultRegion: 'x', rules: [{ region: 'a', countries: 'DE' }] }, 'geo.rules[0].countries'],
  ]
  for (const [what, options, field] of invalid) {
    it(`refuses ${what}, naming ${field}`, () => {
      assert.throws(() => RegionRules.compile(options as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }
})
