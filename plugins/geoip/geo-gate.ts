import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import type { MessageContext } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import type { Middleware, Next } from '../../src/routemq/plugin-api.js'
import { GeoBlockedError, type GeoBlockReason } from './errors/geo-blocked-error.js'
import { GEO_GATE_OPTIONS_SHAPE } from './geo-gate-options-shape.js'
import type { GeoLocation } from './geo-resolver.js'
import './geo-region.js'

/** Places a `geoGate` list names; codes are case-insensitive. */
export interface GeoPlaces {
  /** ISO 3166-1 alpha-2 codes, e.g. `'DE'`. */
  readonly countries?: readonly string[]
  /** Continent codes: AF, AN, AS, EU, NA, OC, SA. */
  readonly continents?: readonly string[]
  /** Region names, as the resolver's rules give them. */
  readonly regions?: readonly string[]
}

/** Options of `geoGate`: exactly one of `allow` and `deny`. */
export type GeoGateOptions = (
  | { readonly allow: GeoPlaces; readonly deny?: undefined }
  | { readonly deny: GeoPlaces; readonly allow?: undefined }
) & {
  /**
   * Messages whose location is unknown (private, bad or missing addresses,
   * addresses the database does not have). Default: `'deny'` with an allow
   * list (only what is listed gets in), `'allow'` with a deny list.
   */
  readonly unknown?: 'allow' | 'deny'
  /** Names the gate in metrics. Default: its list, e.g. `deny:KP,region:sanctioned`. */
  readonly name?: string
}

/** Counters of a `geoGate`. */
export interface GeoGateStats {
  readonly passed: number
  readonly blocked: number
  readonly blockedBy: Readonly<Record<GeoBlockReason, number>>
}

const CONTINENTS = new Set(['AF', 'AN', 'AS', 'EU', 'NA', 'OC', 'SA'])

/**
 * The middleware `geoGate()` returns: lets a message through, or fails it
 * with `GeoBlockedError` before the handler runs, by the sender's country,
 * continent or region as `geoRegion()` (placed before it) found them.
 */
export class GeoGate implements Middleware {
  readonly name: string
  readonly #mode: 'allow' | 'deny'
  readonly #countries: ReadonlySet<string>
  readonly #continents: ReadonlySet<string>
  readonly #regions: ReadonlySet<string>
  readonly #unknownAllowed: boolean
  #passed = 0
  readonly #blockedBy: Record<GeoBlockReason, number> = { country: 0, region: 0, continent: 0, 'not-allowed': 0, 'unknown-location': 0 }

  constructor(options: GeoGateOptions) {
    checkOptions(options, GEO_GATE_OPTIONS_SHAPE, 'geoGate')
    const hasAllow = options.allow !== undefined
    const hasDeny = options.deny !== undefined
    if (hasAllow === hasDeny) throw new InvalidOptionError('geoGate', 'give exactly one of allow: { countries, continents, regions } and deny: { ... }')
    this.#mode = hasAllow ? 'allow' : 'deny'
    const places = (hasAllow ? options.allow : options.deny)
    const at = `geoGate.${this.#mode}`
    this.#countries = codes(places.countries, `${at}.countries`, (c) => /^[A-Z]{2}$/.test(c), 'an ISO 3166-1 alpha-2 country code such as "DE"')
    this.#continents = codes(places.continents, `${at}.continents`, (c) => CONTINENTS.has(c), 'a continent code (AF, AN, AS, EU, NA, OC, SA)')
    this.#regions = codes(places.regions, `${at}.regions`, (c) => /^[\w.-]+$/i.test(c), 'a region name', false)
    if (this.#countries.size + this.#continents.size + this.#regions.size === 0) throw new InvalidOptionError(at, 'name at least one country, continent or region')
    const unknown = options.unknown ?? (this.#mode === 'allow' ? 'deny' : 'allow')
    this.#unknownAllowed = unknown === 'allow'
    this.name = options.name ?? `${this.#mode}:${[...this.#countries, ...this.#continents, ...[...this.#regions].map((r) => `region:${r}`)].join(',')}`
  }

  get stats(): GeoGateStats {
    const blocked = Object.values(this.#blockedBy).reduce((sum, n) => sum + n, 0)
    return Object.freeze({ passed: this.#passed, blocked, blockedBy: Object.freeze({ ...this.#blockedBy }) })
  }

  handle(ctx: MessageContext, next: Next): Promise<unknown> {
    const geo = ctx.state.geo
    if (geo === undefined) {
      return Promise.reject(new InvalidOptionError(`geoGate on route "${ctx.route.pattern}"`, 'no location on the message: put geoRegion({ ip, resolver }) before geoGate in the middleware list'))
    }
    const reason = this.#verdict(geo)
    if (reason !== undefined) {
      this.#blockedBy[reason]++
      return Promise.reject(new GeoBlockedError(ctx.route.name ?? ctx.route.pattern, reason, geo.country, geo.region))
    }
    this.#passed++
    return next(ctx)
  }

  /** Why `geo` is turned away, or `undefined` when it may pass. */
  #verdict(geo: GeoLocation): GeoBlockReason | undefined {
    const country = geo.country?.toUpperCase()
    const continent = geo.continent?.toUpperCase()
    const known = geo.reason === 'found' && (country !== undefined || continent !== undefined)
    const byCountry = country !== undefined && this.#countries.has(country)
    const byContinent = continent !== undefined && this.#continents.has(continent)
    // The region is always set (the default one for unknown places), so a listed region speaks only for
    // known places; unknown ones are decided by the unknown option.
    const byRegion = this.#regions.has(geo.region)
    if (this.#mode === 'deny') {
      if (byCountry) return 'country'
      if (byContinent) return 'continent'
      if (byRegion && known) return 'region'
      return known || this.#unknownAllowed ? undefined : 'unknown-location'
    }
    if (!known) return this.#unknownAllowed ? undefined : 'unknown-location'
    return byCountry || byContinent || byRegion ? undefined : 'not-allowed'
  }
}

function codes(list: readonly string[] | undefined, field: string, valid: (code: string) => boolean, expected: string, upper = true): ReadonlySet<string> {
  if (list === undefined) return new Set()
  if (!Array.isArray(list)) throw new InvalidOptionError(field, 'must be a list')
  return new Set(
    list.map((raw: unknown, i) => {
      const code = typeof raw === 'string' ? (upper ? raw.trim().toUpperCase() : raw.trim()) : ''
      if (!valid(code)) throw new InvalidOptionError(`${field}[${i}]`, `${JSON.stringify(raw)} is not ${expected}`)
      return code
    }),
  )
}

/**
 * Route middleware that drops messages by where their sender is: with
 * `allow`, only messages from the listed countries, continents or regions
 * reach the handler; with `deny`, messages from the listed ones do not. A
 * message turned away fails with `GeoBlockedError` and is counted
 * (`gate.stats`, and `geo_gate_blocked_total` on `/metrics`). Place it after
 * `geoRegion()`.
 *
 * @example
 * router.on('devices/{id}/cmd', run, { middleware: [geoRegion({ ip: { userProperty: 'client-ip' }, resolver }), geoGate({ allow: { regions: ['eu'] } })] })
 */
export function geoGate(options: GeoGateOptions): GeoGate {
  return new GeoGate(options)
}
