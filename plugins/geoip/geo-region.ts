import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { MessageContext } from '../../src/routemq/plugin-api.js'
import type { Middleware, Next, RouteParams } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import { GEO_RESOLVER } from '../../src/tokens.js'
import { GEO_REGION_OPTIONS_SHAPE } from './geo-region-options-shape.js'
import type { GeoLocation, GeoResolver } from './geo-resolver.js'

declare module '../../src/routemq/index.js' {
  interface MessageState {
    /** Set by `geoRegion()`: where the sender is, its region and the region's endpoints. */
    geo?: GeoLocation
  }
}

declare module '../../src/routemq/index.js' {
  interface MessageContext<P extends RouteParams = RouteParams> {
    /** The route parameters' type, as the class has it. */
    readonly params: P
    /** Where the sender is, as `geoRegion()` found it (`ctx.state.geo`); `undefined` on routes without it. */
    readonly geo: GeoLocation | undefined
  }
}

if (!Object.getOwnPropertyDescriptor(MessageContext.prototype, 'geo')) {
  Object.defineProperty(MessageContext.prototype, 'geo', {
    get(this: MessageContext): GeoLocation | undefined {
      return this.state.geo
    },
    configurable: true,
  })
}

/**
 * Where a message's sender address is: a field of its JSON payload (dotted
 * path), an MQTT 5 user property, a topic parameter, or a function.
 */
export type IpSource =
  | { readonly payload: string }
  | { readonly userProperty: string }
  | { readonly param: string }
  | ((ctx: MessageContext) => unknown)

/** Options of `geoRegion`. */
export interface GeoRegionOptions {
  readonly ip: IpSource
  /** Default: the one `LoadBalancingModule` opened (`GEO_RESOLVER` in the message's container). */
  readonly resolver?: GeoResolver
}

/**
 * Route middleware that resolves the sender's address and sets `ctx.geo`
 * (`{ ip, country, continent, subdivision, region, endpoints, reason }`,
 * kept in `ctx.state.geo`) before the handler runs; the replica pool then
 * prefers replicas of that region for the message's reads. An address that
 * is missing or bad gets the default region (and says why); the message is
 * never failed for it.
 *
 * @example
 * router.on('devices/{id}/telemetry', save, { middleware: [geoRegion({ ip: { payload: 'ip' }, resolver })] })
 */
/** Marks a `geoRegion()` that asks the container for its resolver, so that the module can check one exists at start. */
export const USES_MODULE_RESOLVER = Symbol.for('routemq-load-balancing.geoRegion.usesModuleResolver')

export function geoRegion(options: GeoRegionOptions): Middleware {
  checkOptions(options, GEO_REGION_OPTIONS_SHAPE, 'geoRegion')
  const read = ipReader(options.ip)
  const resolver = options.resolver
  return {
    [USES_MODULE_RESOLVER]: resolver === undefined,
    handle(ctx: MessageContext, next: Next) {
      ctx.state.geo = (resolver ?? containerResolver(ctx)).lookup(read(ctx))
      return next(ctx)
    },
  } as Middleware
}

function containerResolver(ctx: MessageContext): GeoResolver {
  try {
    return ctx.container.resolve<GeoResolver>(GEO_RESOLVER)
  } catch (error) {
    const detail = error instanceof Error ? ` (${error.message})` : ''
    throw new InvalidOptionError(`geoRegion on route "${ctx.route.pattern}"`, `no resolver: pass geoRegion({ ip, resolver }), or configure geo in LoadBalancingModule${detail}`)
  }
}

function ipReader(source: IpSource | undefined): (ctx: MessageContext) => unknown {
  if (typeof source === 'function') {
    return (ctx) => {
      try {
        return source(ctx)
      } catch {
        return undefined
      }
    }
  }
  if (source && typeof source === 'object') {
    if ('payload' in source && typeof source.payload === 'string' && source.payload !== '') {
      const path = source.payload.split('.')
      return (ctx) => path.reduce<unknown>((value, key) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined), ctx.payload)
    }
    if ('userProperty' in source && typeof source.userProperty === 'string' && source.userProperty !== '') {
      const name = source.userProperty
      return (ctx) => ctx.userProperty(name)
    }
    if ('param' in source && typeof source.param === 'string' && source.param !== '') {
      const name = source.param
      return (ctx) => ctx.params[name]
    }
  }
  throw new InvalidOptionError('geoRegion.ip', "say where the sender's address is: { payload: 'field' }, { userProperty: 'name' }, { param: 'name' } or a function")
}
