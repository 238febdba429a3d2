import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * The GeoIP database given in the options cannot be used: the file is
 * missing or unreadable, or it is no MaxMind DB.
 *
 * @example
 * await GeoResolver.open({ database: '/data/GeoLite2-City.mmdb', defaultRegion: 'eu' }).catch((e) => { if (isGeoDatabaseError(e)) ... })
 */
export class GeoDatabaseError extends RouteMqError {
  readonly code = 'GEO_DATABASE'

  constructor(
    readonly path: string,
    reason: string,
    cause?: unknown,
    /** The file was read and is no MaxMind DB (rather than missing or unreadable): reading it again will not help. */
    readonly corrupt = false,
  ) {
    super(`GeoIP database ${path}: ${reason}. Give geo.database the path of a MaxMind DB (.mmdb) file, such as GeoLite2-City.mmdb or an @ip-location-db country database.`, cause === undefined ? undefined : { cause })
  }
}

export function isGeoDatabaseError(error: unknown): error is GeoDatabaseError {
  return error instanceof GeoDatabaseError
}
