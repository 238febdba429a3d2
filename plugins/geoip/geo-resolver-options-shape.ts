import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import {
  isBoolean, isLogger, listOf, matching, nonEmptyString, recordOf, regionName, required, shapeOf, wholeNumber, type OptionCheck, type OptionShape,
} from '../../src/routemq/plugin-api.js'
import type { GeoResolverOptions, RegionEndpoints } from './geo-resolver.js'
import type { RegionRule } from './region-rules.js'

const REGION_HINT = 'name the region (letters, digits, ".", "_", "-")'

/** Codes are checked, and told apart, by `RegionRules.compile`. */
const codes: OptionCheck = listOf(nonEmptyString)

const REGION_RULE_SHAPE: OptionShape<RegionRule> = {
  region: required(regionName, REGION_HINT),
  continents: codes,
  countries: codes,
  subdivisions: codes,
}

/**
 * A URL handed to devices as given (`brokersFor`, `ctx.geo.endpoints`):
 * one of `schemes`, with a host, and no whitespace or control characters,
 * which a device's parser may read otherwise than this one. It never carries
 * a user name or password: every device of the region would receive them.
 * Messages never quote the value, since it may hold such a password.
 */
function deviceUrl(schemes: readonly string[], example: string): OptionCheck {
  const kind = `a ${schemes.map((scheme) => `${scheme}//`).join(', ')} URL such as ${example}`
  return (value, field) => {
    if (value === undefined) return
    if (typeof value !== 'string' || value === '') throw new InvalidOptionError(field, `must be ${kind}`)
    if (/[\s\p{Cc}]/u.test(value)) throw new InvalidOptionError(field, `must hold no whitespace or control characters; give ${kind}`)
    let url: URL
    try {
      url = new URL(value)
    } catch {
      throw new InvalidOptionError(field, `must be ${kind}`)
    }
    if (!schemes.includes(url.protocol)) throw new InvalidOptionError(field, `must be ${kind}`)
    // The raw text too: `mqtt://:@h` parses to no user name, yet would reach devices with its "@".
    if (url.username !== '' || url.password !== '' || /^[^:]+:\/\/[^/?#]*@/.test(value)) {
      throw new InvalidOptionError(field, 'must carry no user name or password: devices receive this URL as given, so every device of the region would get them; give devices their own credentials')
    }
    if (url.hostname === '') throw new InvalidOptionError(field, `must name a host; give ${kind}`)
  }
}

const REGION_ENDPOINTS_SHAPE: OptionShape<RegionEndpoints> = {
  brokers: listOf(deviceUrl(['mqtt:', 'mqtts:', 'ws:', 'wss:'], 'mqtts://eu.example.com:8883')),
  apiUrls: listOf(deviceUrl(['http:', 'https:'], 'https://eu.example.com')),
  replicas: listOf(nonEmptyString),
}

/** The keys and types of `GeoResolverOptions` at every depth; what the rules mean is checked by `RegionRules.compile`. */
export const GEO_RESOLVER_OPTIONS_SHAPE: OptionShape<GeoResolverOptions> = {
  database: required(matching(/./, 'the path of a MaxMind DB (.mmdb) file, such as GeoLite2-City.mmdb'), 'give the path of a MaxMind DB (.mmdb) file, such as GeoLite2-City.mmdb'),
  rules: listOf(shapeOf(REGION_RULE_SHAPE)),
  defaultRegion: required(regionName, 'name the region for addresses no rule matches (letters, digits, ".", "_", "-")'),
  endpoints: recordOf(shapeOf(REGION_ENDPOINTS_SHAPE)),
  cacheSize: wholeNumber(0),
  watch: isBoolean,
  logger: isLogger,
}
