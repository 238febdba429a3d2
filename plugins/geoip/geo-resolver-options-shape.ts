import {
  isBoolean, isLogger, listOf, matching, nonEmptyString, recordOf, regionName, required, shapeOf, wholeNumber, type OptionCheck, type OptionShape,
} from '../../src/routemq/option-shape.js'
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

const REGION_ENDPOINTS_SHAPE: OptionShape<RegionEndpoints> = {
  brokers: listOf(nonEmptyString),
  apiUrls: listOf(nonEmptyString),
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
