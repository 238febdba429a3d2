import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { REGION_PATTERN } from '../../src/routemq/plugin-api.js'

/**
 * Which places make up a region: continents (`'EU'`), countries (ISO 3166-1
 * alpha-2, `'DE'`) and subdivisions (ISO 3166-2, `'US-CA'`).
 */
export interface RegionRule {
  readonly region: string
  readonly continents?: readonly string[]
  readonly countries?: readonly string[]
  readonly subdivisions?: readonly string[]
}

/** Where an address is, as a database tells it; any part may be unknown. */
export interface Place {
  readonly continent?: string | undefined
  readonly country?: string | undefined
  /** The subdivision's own code (`'CA'`), or the full ISO 3166-2 code (`'US-CA'`). */
  readonly subdivision?: string | undefined
}

/** A region and the most specific part of the place that chose it. */
export interface RegionMatch {
  readonly region: string
  readonly matchedBy: 'subdivision' | 'country' | 'continent' | 'default'
}

const CONTINENTS = new Set(['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'])
// The same names pools and brokers take for their region, so that a message's region can pick them.
const REGION = REGION_PATTERN
const COUNTRY = /^[A-Z]{2}$/
const SUBDIVISION = /^[A-Z]{2}-[A-Z0-9]{1,3}$/
const KINDS = ['subdivisions', 'countries', 'continents'] as const

/**
 * Region rules compiled into lookups: the most specific rule wins
 * (subdivision over country over continent), and a place no rule names gets
 * the default region. Codes are case-insensitive. A code named by two rules
 * is refused, since which region it means would be a guess.
 *
 * @example
 * const rules = RegionRules.compile({ defaultRegion: 'eu', rules: [{ region: 'us-west', subdivisions: ['US-CA'] }, { region: 'us', countries: ['US'] }] })
 * rules.match({ continent: 'NA', country: 'US', subdivision: 'CA' }) // { region: 'us-west', matchedBy: 'subdivision' }
 */
export class RegionRules {
  readonly defaultRegion: string
  readonly regions: readonly string[]
  readonly #subdivisions: ReadonlyMap<string, string>
  readonly #countries: ReadonlyMap<string, string>
  readonly #continents: ReadonlyMap<string, string>

  private constructor(defaultRegion: string, regions: string[], maps: Record<(typeof KINDS)[number], Map<string, string>>) {
    this.defaultRegion = defaultRegion
    this.regions = Object.freeze(regions)
    this.#subdivisions = maps.subdivisions
    this.#countries = maps.countries
    this.#continents = maps.continents
  }

  /** Validates and compiles; a wrong rule fails with `InvalidOptionError` naming it (`geo.rules[2].countries[0]`). */
  static compile(options: { readonly rules?: readonly RegionRule[]; readonly defaultRegion: string }, field = 'geo'): RegionRules {
    const { rules = [], defaultRegion } = (options ?? {}) as Partial<typeof options>
    if (typeof defaultRegion !== 'string' || !REGION.test(defaultRegion)) {
      throw new InvalidOptionError(`${field}.defaultRegion`, 'name the region for addresses no rule matches (letters, digits, ".", "_", "-")')
    }
    if (!Array.isArray(rules)) throw new InvalidOptionError(`${field}.rules`, 'must be a list of { region, continents?, countries?, subdivisions? }')
    const maps = { subdivisions: new Map<string, string>(), countries: new Map<string, string>(), continents: new Map<string, string>() }
    const owner = new Map<string, string>()
    const regions = new Set<string>([defaultRegion])
    ;(rules as readonly RegionRule[]).forEach((rule, index) => {
      const at = `${field}.rules[${index}]`
      if (!rule || typeof rule !== 'object') throw new InvalidOptionError(at, 'must be { region, continents?, countries?, subdivisions? }')
      if (typeof rule.region !== 'string' || !REGION.test(rule.region)) {
        throw new InvalidOptionError(`${at}.region`, 'name the region (letters, digits, ".", "_", "-")')
      }
      let named = 0
      for (const kind of KINDS) {
        const codes = rule[kind]
        if (codes === undefined) continue
        if (!Array.isArray(codes)) throw new InvalidOptionError(`${at}.${kind}`, 'must be a list of codes')
        codes.forEach((raw: unknown, i) => {
          const code = typeof raw === 'string' ? raw.trim().toUpperCase() : ''
          const valid = kind === 'continents' ? CONTINENTS.has(code) : kind === 'countries' ? COUNTRY.test(code) : SUBDIVISION.test(code)
          if (!valid) throw new InvalidOptionError(`${at}.${kind}[${i}]`, `${JSON.stringify(raw)} is not ${EXPECTED[kind]}`)
          const previous = owner.get(`${kind}:${code}`)
          if (previous !== undefined) throw new InvalidOptionError(`${at}.${kind}[${i}]`, `${code} is already in ${previous}; a place may belong to one rule only`)
          owner.set(`${kind}:${code}`, at)
          maps[kind].set(code, rule.region)
          named++
        })
      }
      if (named === 0) throw new InvalidOptionError(at, 'name at least one continent, country or subdivision')
      regions.add(rule.region)
    })
    return new RegionRules(defaultRegion, [...regions], maps)
  }

  /** `match(place).region`, without building objects: for per-lookup paths. */
  regionOf(continent: string | undefined, country: string | undefined, subdivision: string | undefined): string {
    if (subdivision !== undefined && country !== undefined) {
      const region = this.#subdivisions.get(subdivision.includes('-') ? subdivision.toUpperCase() : `${country}-${subdivision}`.toUpperCase())
      if (region !== undefined) return region
    }
    if (country !== undefined) {
      const region = this.#countries.get(country.toUpperCase())
      if (region !== undefined) return region
    }
    if (continent !== undefined) {
      const region = this.#continents.get(continent.toUpperCase())
      if (region !== undefined) return region
    }
    return this.defaultRegion
  }

  /** The region of a place: its subdivision's rule, else its country's, else its continent's, else the default. */
  match(place: Place): RegionMatch {
    const country = place.country?.toUpperCase()
    const subdivision = place.subdivision?.toUpperCase()
    if (subdivision !== undefined) {
      const code = subdivision.includes('-') ? subdivision : country !== undefined ? `${country}-${subdivision}` : undefined
      const region = code === undefined ? undefined : this.#subdivisions.get(code)
      if (region !== undefined) return { region, matchedBy: 'subdivision' }
    }
    const byCountry = country === undefined ? undefined : this.#countries.get(country)
    if (byCountry !== undefined) return { region: byCountry, matchedBy: 'country' }
    const continent = place.continent?.toUpperCase()
    const byContinent = continent === undefined ? undefined : this.#continents.get(continent)
    if (byContinent !== undefined) return { region: byContinent, matchedBy: 'continent' }
    return { region: this.defaultRegion, matchedBy: 'default' }
  }
}

const EXPECTED: Readonly<Record<(typeof KINDS)[number], string>> = {
  continents: 'a continent code (AF, AN, AS, EU, NA, OC, SA)',
  countries: 'an ISO 3166-1 alpha-2 country code such as "DE"',
  subdivisions: 'an ISO 3166-2 subdivision code such as "US-CA"',
}
