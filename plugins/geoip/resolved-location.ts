import type { GeoLocation, GeoReason, GeoResolver, RegionEndpoints } from './geo-resolver.js'

/**
 * A location as a `GeoResolver` makes it: frozen, and branded with its
 * resolver in a private field. No copy (`{ ...location }`), JSON round trip
 * or object of the same shape has the field, so `originOf` tells the
 * resolver's own locations from anything else; a property, even one keyed by
 * a module-private symbol, would be copied by a spread. Not exported from
 * the package.
 *
 * @example
 * ResolvedLocation.originOf(resolver.lookup('81.2.69.1')) === resolver // true
 */
export class ResolvedLocation implements GeoLocation {
  // A WeakMap from location to resolver would do the same, but costs more than the rest of an uncached lookup.
  readonly #origin: GeoResolver

  constructor(
    readonly ip: string,
    readonly continent: string | undefined,
    readonly country: string | undefined,
    readonly subdivision: string | undefined,
    readonly region: string,
    readonly endpoints: RegionEndpoints,
    readonly reason: GeoReason,
    origin: GeoResolver,
  ) {
    this.#origin = origin
    // Frozen: the resolver's cache hands the same object to every caller.
    Object.freeze(this)
  }

  /** The resolver that made `value`, or `undefined` for anything else. */
  static originOf(value: unknown): GeoResolver | undefined {
    return typeof value === 'object' && value !== null && #origin in value ? value.#origin : undefined
  }
}
