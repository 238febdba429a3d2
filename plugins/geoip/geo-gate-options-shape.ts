import { listOf, nonEmptyString, oneOf, shapeOf, type OptionShape } from '../../src/routemq/plugin-api.js'
import type { GeoGateOptions, GeoPlaces } from './geo-gate.js'

/** Codes are checked by the gate, which knows each kind's. */
const GEO_PLACES_SHAPE: OptionShape<GeoPlaces> = {
  countries: listOf(nonEmptyString),
  continents: listOf(nonEmptyString),
  regions: listOf(nonEmptyString),
}

/** The keys and types of `GeoGateOptions`; that exactly one of `allow` and `deny` is given is checked by the gate. */
export const GEO_GATE_OPTIONS_SHAPE: OptionShape<GeoGateOptions> = {
  allow: shapeOf(GEO_PLACES_SHAPE),
  deny: shapeOf(GEO_PLACES_SHAPE),
  unknown: oneOf(['allow', 'deny']),
  name: nonEmptyString,
}
