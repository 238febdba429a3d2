import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { isBoolean, isFunction, required, type OptionCheck, type OptionShape } from '../../src/routemq/plugin-api.js'
import type { DeviceRedirectsOptions } from './device-redirects.js'
import { GeoResolver } from './geo-resolver.js'

const RESOLVER_HINT = 'pass the GeoResolver whose endpoints list the brokers'

/**
 * A real `GeoResolver`, not an object with a `lookup`: redirects read its
 * regions and endpoints, and trust only locations it made.
 */
const geoResolver: OptionCheck = (value, field) => {
  if (!(value instanceof GeoResolver)) throw new InvalidOptionError(field, `${RESOLVER_HINT}, such as await GeoResolver.open({ ... })`)
}

/** The keys and types of `DeviceRedirectsOptions`. */
export const DEVICE_REDIRECTS_OPTIONS_SHAPE: OptionShape<DeviceRedirectsOptions> = {
  resolver: required(geoResolver, RESOLVER_HINT),
  health: isFunction('a function (url) => "healthy" | "unhealthy" | "unknown", such as brokerPoolHealth(pool)'),
  otherRegions: isBoolean,
}
