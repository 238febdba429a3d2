import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * `DeviceRedirects.brokersFor` was given something other than an address or
 * a location its own resolver made: a hand-made or copied location (from a
 * payload, or `{ ...ctx.geo }`), one from another `GeoResolver`, or a value
 * of the wrong type. Its broker URLs would be sent to the device, so it is
 * not read at all. `given` says what it was, never its contents.
 *
 * @example
 * try { redirects.brokersFor(ctx.payload.location) } catch (e) { if (isUntrustedLocationError(e)) ... }
 */
export class UntrustedLocationError extends RouteMqError {
  readonly code = 'UNTRUSTED_LOCATION'

  constructor(readonly given: string) {
    super(
      `DeviceRedirects.brokersFor got ${given}, which is neither an IP address nor a location its GeoResolver made. ` +
        "Pass the device's IP address (a string), or ctx.geo as geoRegion() set it with the same resolver; " +
        'a copy of a location, or one built elsewhere, is not trusted, since the device would be sent to its broker URLs.',
    )
  }
}

export function isUntrustedLocationError(error: unknown): error is UntrustedLocationError {
  return error instanceof UntrustedLocationError
}
