import { watch, type FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { Reader, type Response } from 'maxmind'
import { InvalidOptionError } from '../../src/routemq/errors/invalid-option-error.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/logger.js'
import { LruMap } from '../../src/lru-map.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import { classifyAddress } from './address-class.js'
import { GeoDatabaseError } from './errors/geo-database-error.js'
import { RegionRules, type RegionRule } from './region-rules.js'

/** Why a lookup gave the region it gave. */
export type GeoReason = 'found' | 'not-found' | 'empty' | 'invalid' | 'private' | 'reserved'

/** What a region offers its devices and messages; all optional. */
export interface RegionEndpoints {
  /** Broker URLs for devices of the region, nearest first (for redirects). */
  readonly brokers?: readonly string[]
  readonly apiUrls?: readonly string[]
  /** Replica ids (as the replica pool names them) that serve the region. */
  readonly replicas?: readonly string[]
}

/** Where an address is, and the region it belongs to. */
export interface GeoLocation {
  /** The address looked up (IPv4-mapped IPv6 as IPv4); `''` when there was none. */
  readonly ip: string
  readonly continent: string | undefined
  readonly country: string | undefined
  readonly subdivision: string | undefined
  readonly region: string
  /** The region's endpoints, `{}` when none are configured. */
  readonly endpoints: RegionEndpoints
  readonly reason: GeoReason
}

/** Options of `GeoResolver.open`. */
export interface GeoResolverOptions {
  /** Path of a MaxMind DB: GeoIP2/GeoLite2 City or Country, or a flat `country_code` database. */
  readonly database: string
  readonly rules?: readonly RegionRule[]
  /** The region of addresses no rule matches, and of private, reserved, bad and unknown ones. */
  readonly defaultRegion: string
  /** Per region (the default or one a rule names). */
  readonly endpoints?: Readonly<Record<string, RegionEndpoints>>
  /** Lookups remembered (least recently used go first). Default 10 000; 0 for none. */
  readonly cacheSize?: number
  /** Reload when the file is replaced. Default true. */
  readonly watch?: boolean
  readonly logger?: Logger
}

/** Counters since the resolver was opened. */
export interface GeoResolverStats {
  readonly lookups: number
  readonly cacheHits: number
  readonly reasons: Readonly<Record<GeoReason, number>>
  readonly reloads: number
  readonly reloadFailures: number
}

/** The fields read from either kind of record. */
interface GeoRecord {
  readonly continent?: { readonly code?: string }
  readonly country?: { readonly iso_code?: string }
  readonly registered_country?: { readonly iso_code?: string }
  readonly subdivisions?: readonly { readonly iso_code?: string }[]
  readonly country_code?: string
  readonly continent_code?: string
}

/**
 * Resolves IP addresses to a place and a region with a MaxMind DB. It reads
 * GeoIP2/GeoLite2 City and Country records (`country.iso_code`,
 * `continent.code`, `subdivisions`) and flat ones (`country_code`), never
 * throws for an address (bad, empty, private, reserved and unknown ones get
 * the default region and say why), caches lookups, and reloads the database
 * when its file is replaced.
 *
 * @example
 * const geo = await GeoResolver.open({ database: 'GeoLite2-City.mmdb', defaultRegion: 'eu', rules: [{ region: 'us', countries: ['US'] }] })
 * geo.lookup('81.2.69.160') // { ip, country: 'GB', continent: 'EU', region: 'eu', reason: 'found', ... }
 */
export class GeoResolver {
  readonly #path: string
  readonly #rules: RegionRules
  readonly #endpoints: ReadonlyMap<string, RegionEndpoints>
  readonly #log: Logger
  /** Undefined with cacheSize 0. */
  readonly #cache: LruMap<string, GeoLocation> | undefined
  readonly #reasons: Record<GeoReason, number> = { found: 0, 'not-found': 0, empty: 0, invalid: 0, private: 0, reserved: 0 }
  readonly #reloaded = new TypedEvent<{ readonly ok: boolean; readonly error?: unknown }>()
  #reader: Reader<Response>
  #version: string
  #lookups = 0
  #cacheHits = 0
  #reloads = 0
  #reloadFailures = 0
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  #reloading: Promise<void> | undefined

  private constructor(options: GeoResolverOptions, rules: RegionRules, reader: Reader<Response>, version: string) {
    this.#path = options.database
    this.#rules = rules
    this.#endpoints = new Map(Object.entries(options.endpoints ?? {}).map(([region, endpoints]) => [region, Object.freeze({ ...endpoints })]))
    const cacheSize = options.cacheSize ?? 10_000
    this.#cache = cacheSize > 0 ? new LruMap(cacheSize) : undefined
    this.#log = safeLogger(options.logger ?? silentLogger)
    this.#reader = reader
    this.#version = version
  }

  /** Opens the database; a missing or corrupt file fails with `GeoDatabaseError` naming the path. */
  static async open(options: GeoResolverOptions): Promise<GeoResolver> {
    const rules = RegionRules.compile({ rules: options.rules, defaultRegion: options.defaultRegion })
    for (const [region, endpoints] of Object.entries(options.endpoints ?? {})) {
      if (!rules.regions.includes(region)) {
        throw new InvalidOptionError(`geo.endpoints.${region}`, `no rule names region "${region}"; regions: ${rules.regions.join(', ')}`)
      }
      for (const key of ['brokers', 'apiUrls', 'replicas'] as const) {
        const list = endpoints?.[key]
        if (list !== undefined && (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || item === ''))) {
          throw new InvalidOptionError(`geo.endpoints.${region}.${key}`, 'must be a list of non-empty strings')
        }
      }
    }
    if (options.cacheSize !== undefined && (!Number.isInteger(options.cacheSize) || options.cacheSize < 0)) {
      throw new GeoDatabaseError(options.database, 'geo.cacheSize must be a whole number, 0 or more')
    }
    const { reader, version } = await load(options.database)
    const resolver = new GeoResolver(options, rules, reader, version)
    if (options.watch ?? true) resolver.#watch()
    return resolver
  }

  /** The place and region of `ip`; never throws. */
  lookup(ip: unknown): GeoLocation {
    this.#lookups++
    const cache = typeof ip === 'string' ? this.#cache : undefined
    const cached = cache?.get(ip as string)
    if (cached !== undefined) {
      this.#cacheHits++
      this.#reasons[cached.reason]++
      return cached
    }
    const location = this.#resolve(ip)
    this.#reasons[location.reason]++
    cache?.set(ip as string, location)
    return location
  }

  get stats(): GeoResolverStats {
    return Object.freeze({
      lookups: this.#lookups,
      cacheHits: this.#cacheHits,
      reasons: Object.freeze({ ...this.#reasons }),
      reloads: this.#reloads,
      reloadFailures: this.#reloadFailures,
    })
  }

  /** The regions the rules name, the default first. */
  get regions(): readonly string[] {
    return this.#rules.regions
  }

  /** After each reload attempt, whether it took. */
  onReload(listener: (event: { readonly ok: boolean; readonly error?: unknown }) => void): Disposer {
    return this.#reloaded.on(listener)
  }

  /** Reads the file again now; keeps the current database if the new one cannot be opened. */
  reload(): Promise<void> {
    this.#reloading ??= this.#reload().finally(() => (this.#reloading = undefined))
    return this.#reloading
  }

  /** Stops watching the file. */
  close(): void {
    clearTimeout(this.#debounce)
    this.#watcher?.close()
    this.#watcher = undefined
  }

  #resolve(ip: unknown): GeoLocation {
    const { address, kind } = classifyAddress(ip)
    if (kind !== 'public') return this.#located(address, undefined, undefined, undefined, kind)
    let record: GeoRecord | null
    try {
      record = this.#reader.get(address) as GeoRecord | null
    } catch {
      return this.#located(address, undefined, undefined, undefined, 'invalid')
    }
    if (!record) return this.#located(address, undefined, undefined, undefined, 'not-found')
    const country = record.country?.iso_code ?? record.country_code ?? record.registered_country?.iso_code
    const continent = record.continent?.code ?? record.continent_code
    const subdivision = record.subdivisions?.[0]?.iso_code
    return this.#located(address, continent, country, subdivision, 'found')
  }

  // Not frozen: results are shared through the cache and typed read-only; freezing cost a tenth of an uncached lookup.
  #located(ip: string, continent: string | undefined, country: string | undefined, subdivision: string | undefined, reason: GeoReason): GeoLocation {
    const region = this.#rules.regionOf(continent, country, subdivision)
    return { ip, continent, country, subdivision, region, endpoints: this.#endpoints.get(region) ?? NO_ENDPOINTS, reason }
  }

  #watch(): void {
    // The directory, not the file: replacing a file by rename gives it a new inode a file watch would miss.
    const name = basename(this.#path)
    try {
      this.#watcher = watch(dirname(this.#path), { persistent: false }, (_event, changed) => {
        if (changed !== null && changed !== name) return
        clearTimeout(this.#debounce)
        this.#debounce = setTimeout(() => void this.reload(), 50)
        this.#debounce.unref()
      })
      this.#watcher.on('error', (error) => this.#log.warn('cannot watch the GeoIP database for changes', { path: this.#path, error }))
    } catch (error) {
      this.#log.warn('cannot watch the GeoIP database for changes', { path: this.#path, error })
    }
  }

  async #reload(): Promise<void> {
    try {
      const version = await fileVersion(this.#path)
      if (version === this.#version) return
      const loaded = await load(this.#path)
      this.#reader = loaded.reader
      this.#version = loaded.version
      this.#cache?.clear()
      this.#reloads++
      this.#log.info('GeoIP database reloaded', { path: this.#path })
      this.#reloaded.emit({ ok: true })
    } catch (error) {
      this.#reloadFailures++
      this.#log.warn('GeoIP database not reloaded; keeping the previous one', { path: this.#path, error })
      this.#reloaded.emit({ ok: false, error })
    }
  }
}

const NO_ENDPOINTS: RegionEndpoints = Object.freeze({})

async function fileVersion(path: string): Promise<string> {
  const info = await stat(path)
  return `${info.ino}:${info.size}:${info.mtimeMs}`
}

async function load(path: string): Promise<{ reader: Reader<Response>; version: string }> {
  let version: string
  let bytes: Buffer
  try {
    version = await fileVersion(path)
    bytes = await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new GeoDatabaseError(path, code === 'ENOENT' ? 'no such file' : `cannot be read (${code ?? 'error'})`, error)
  }
  try {
    return { reader: new Reader<Response>(bytes), version }
  } catch (error) {
    throw new GeoDatabaseError(path, `is not a MaxMind DB (${error instanceof Error ? error.message : String(error)})`, error)
  }
}
