import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/** What made a `geoGate` turn a message away. */
export type GeoBlockReason = 'country' | 'region' | 'continent' | 'not-allowed' | 'unknown-location'

/**
 * A `geoGate` turned a message away because of where its sender is: its
 * country, continent or region is denied, is not among the allowed ones, or
 * its location is unknown and the gate does not let unknown locations in.
 * The handler did not run; the message fails like any handler error, so the
 * route's error policy decides its fate (the default acknowledges it: the
 * message is dropped; a dead-letter topic keeps it).
 *
 * @example
 * router.on('devices/{id}/cmd', run, { middleware: [geoRegion({ ip, resolver }), geoGate({ deny: { countries: ['KP'] } })] })
 */
export class GeoBlockedError extends RouteMqError {
  readonly code = 'GEO_BLOCKED'

  constructor(
    readonly route: string,
    readonly reason: GeoBlockReason,
    readonly country: string | undefined,
    readonly region: string,
  ) {
    super(`${route}: message from ${country ?? 'an unknown country'} (region ${region}) blocked by geoGate: ${DETAIL[reason]}`)
  }
}

const DETAIL: Readonly<Record<GeoBlockReason, string>> = {
  country: 'its country is denied',
  region: 'its region is denied',
  continent: 'its continent is denied',
  'not-allowed': 'its country, continent and region are not in the allow list',
  'unknown-location': "its location is unknown; set unknown: 'allow' to let such messages in",
}

export function isGeoBlockedError(error: unknown): error is GeoBlockedError {
  return error instanceof GeoBlockedError
}
