import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { byKind, checkOptions, matching, required, type OptionShape } from '../../src/routemq/plugin-api.js'
import type { GeoRegionOptions, IpSource } from './geo-region.js'

const IP_HINT = "say where the sender's address is: { payload: 'field' }, { userProperty: 'name' }, { param: 'name' } or a function"

const name = matching(/./, 'a non-empty name')

type IpSourceKey = Exclude<IpSource, (...args: never[]) => unknown> extends infer S ? (S extends object ? keyof S : never) : never

/** Every key of the object forms of `IpSource`; one of them is given. */
const IP_SOURCE_SHAPE: OptionShape<Partial<Record<IpSourceKey, string>>> = { payload: name, userProperty: name, param: name }

/** The keys and types of `GeoRegionOptions`. */
export const GEO_REGION_OPTIONS_SHAPE: OptionShape<GeoRegionOptions> = {
  ip: required(byKind(IP_HINT, {
    function: true,
    object: (value, field) => {
      checkOptions(value, IP_SOURCE_SHAPE, field)
      if (Object.values(value as object).filter((v) => v !== undefined).length !== 1) throw new InvalidOptionError(field, IP_HINT)
    },
  }), IP_HINT),
  resolver: (value, field) => {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- a false positive: the rule reads `value`, narrowed from unknown to {}, as the asserted type, and tsc needs the assertion
    if (value !== undefined && typeof (value as { lookup?: unknown } | null)?.lookup !== 'function') {
      throw new InvalidOptionError(field, "pass the GeoResolver to ask, or leave it out to use the module's")
    }
  },
}
