import { bareHost } from '../../src/host-name.js'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import { DEVICE_REDIRECTS_OPTIONS_SHAPE } from './device-redirects-options-shape.js'
import { UntrustedLocationError } from './errors/untrusted-location-error.js'
import type { GeoLocation, GeoReason, GeoResolver } from './geo-resolver.js'
import { ResolvedLocation } from './resolved-location.js'

/** How a device-facing broker URL is doing. */
export type BrokerUrlState = 'healthy' | 'unhealthy' | 'unknown'

/** Tells how a broker URL of the region endpoints is doing. */
export type BrokerUrlHealth = (url: string) => BrokerUrlState

/** The parts of a `BrokerPool` that `brokerPoolHealth` reads. */
export interface BrokerPoolLike {
  readonly options: { readonly brokers: readonly { readonly id: string; readonly host: string; readonly port: number }[] }
  readonly stats: { readonly brokers: readonly { readonly id: string; readonly state: 'unknown' | 'healthy' | 'unhealthy' }[] }
}

/** Options of `DeviceRedirects`. */
export interface DeviceRedirectsOptions {
  readonly resolver: GeoResolver
  /** How each broker URL is doing; `brokerPoolHealth(pool)` reads a `BrokerPool`. Default: every URL unknown. */
  readonly health?: BrokerUrlHealth
  /** After the region's own brokers, list the healthy ones of the other regions (the default region's first). Default true. */
  readonly otherRegions?: boolean
}

/** Where a device should connect. */
export interface DeviceRedirect {
  readonly ip: string
  readonly region: string
  readonly reason: GeoReason
  /** Broker URLs, best first: the region's healthy ones, then its unknown ones, then other regions' healthy ones. Never an unhealthy one. */
  readonly brokers: readonly string[]
}

/**
 * Answers "which brokers should this device use?" from its address: the
 * broker URLs of its region (`endpoints.<region>.brokers` of the resolver),
 * healthy ones first in the order configured, without the ones known to be
 * down, followed by healthy brokers of other regions for the device to fail
 * over to.
 *
 * @example
 * const redirects = new DeviceRedirects({ resolver, health: brokerPoolHealth(brokers) })
 * router.on('devices/{id}/hello', async (ctx) => ctx.publish(`devices/${ctx.params.id}/brokers`, redirects.brokersFor(ctx.geo)))
 */
export class DeviceRedirects {
  readonly #resolver: GeoResolver
  readonly #health: BrokerUrlHealth
  readonly #otherRegions: boolean

  constructor(options: DeviceRedirectsOptions) {
    checkOptions(options, DEVICE_REDIRECTS_OPTIONS_SHAPE, 'redirects')
    this.#resolver = options.resolver
    this.#health = options.health ?? (() => 'unknown')
    this.#otherRegions = options.otherRegions ?? true
  }

  /**
   * The brokers for a device: give its address (a string, looked up: a bad
   * one gets the default region's; `undefined` or `null`, for none, too), or
   * the `ctx.geo` that `geoRegion()` found with this resolver, which saves a
   * second lookup. Anything else, a copy of a location or an object shaped
   * like one included, fails with `UntrustedLocationError`: the URLs it
   * carries would go to the device.
   */
  brokersFor(ipOrLocation: unknown): DeviceRedirect {
    const location = this.#trusted(ipOrLocation)
    const state = new Map<string, BrokerUrlState>()
    const stateOf = (url: string): BrokerUrlState => {
      let known = state.get(url)
      if (known === undefined) {
        try {
          known = this.#health(url)
        } catch {
          known = 'unknown'
        }
        state.set(url, known)
      }
      return known
    }
    const own = location.endpoints.brokers ?? []
    const brokers = [...own.filter((url) => stateOf(url) === 'healthy'), ...own.filter((url) => stateOf(url) === 'unknown')]
    if (this.#otherRegions) {
      for (const region of this.#resolver.regions) {
        if (region === location.region) continue
        for (const url of this.#resolver.endpointsOf(region).brokers ?? []) if (stateOf(url) === 'healthy') brokers.push(url)
      }
    }
    return { ip: location.ip, region: location.region, reason: location.reason, brokers: [...new Set(brokers)] }
  }

  /** A location to read the brokers of: one the resolver makes now from an address, or one it made before. */
  #trusted(input: unknown): GeoLocation {
    if (typeof input === 'string' || input === undefined || input === null) return this.#resolver.lookup(input)
    const origin = ResolvedLocation.originOf(input)
    if (origin === this.#resolver) return input as GeoLocation
    throw new UntrustedLocationError(origin !== undefined ? 'a location another GeoResolver made' : kindOf(input))
  }
}

/** What was given, by kind only: its contents may be anyone's. */
function kindOf(input: unknown): string {
  if (Array.isArray(input)) return 'a list'
  if (typeof input === 'object') return 'an object'
  return `a ${typeof input}`
}

/**
 * Broker URL health from a `BrokerPool`'s probes: a URL stands for the
 * pool's broker on the same host (the same port preferred, since devices
 * often use TLS on another port of the same broker), or for the broker id
 * `aliases` gives it. URLs the pool has no broker for are `'unknown'`.
 *
 * @example
 * new DeviceRedirects({ resolver, health: brokerPoolHealth(pool, { 'mqtts://eu.example.com:8883': 'eu-1' }) })
 */
export function brokerPoolHealth(pool: BrokerPoolLike, aliases: Readonly<Record<string, string>> = {}): BrokerUrlHealth {
  if (!pool?.options?.brokers || !pool.stats) throw new InvalidOptionError('redirects.health', 'pass the BrokerPool whose probes tell how the brokers are')
  const ids = new Set(pool.options.brokers.map((broker) => broker.id))
  for (const [url, id] of Object.entries(aliases)) {
    if (!ids.has(id)) throw new InvalidOptionError(`redirects.aliases["${url}"]`, `no broker "${id}" in the pool; its brokers: ${[...ids].join(', ')}`)
  }
  const brokerOf = new Map<string, string | undefined>()
  const idFor = (url: string): string | undefined => {
    if (brokerOf.has(url)) return brokerOf.get(url)
    let id: string | undefined = aliases[url]
    if (id === undefined) {
      try {
        const parsed = new URL(url)
        const host = bareHost(parsed.hostname).toLowerCase()
        const port = parsed.port === '' ? undefined : Number(parsed.port)
        const sameHost = pool.options.brokers.filter((broker) => bareHost(broker.host).toLowerCase() === host)
        id = (sameHost.find((broker) => broker.port === port) ?? sameHost[0])?.id
      } catch {
        id = undefined
      }
    }
    brokerOf.set(url, id)
    return id
  }
  return (url) => {
    const id = idFor(url)
    if (id === undefined) return 'unknown'
    return pool.stats.brokers.find((broker) => broker.id === id)?.state ?? 'unknown'
  }
}
