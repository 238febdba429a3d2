import { watch, type FSWatcher } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { basename, dirname } from 'node:path'
import { Reader, type Response } from 'maxmind'
import type { HealthCheckDefinition, HealthCheckSource } from '../../src/health/health-check.js'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import { safeLogger, silentLogger, type Logger } from '../../src/routemq/plugin-api.js'
import { SummarisedWarning } from '../../src/routemq/plugin-api.js'
import { LruMap } from '../../src/lru-map.js'
import { TypedEvent, type Disposer } from '../../src/typed-event.js'
import { classifyAddress, ipv4Class, ipv6Groups, MAX_ADDRESS_LENGTH, parseIPv4 } from './address-class.js'
import { continentOfCountry } from './continent-of-country.js'
import { GeoDatabaseError } from './errors/geo-database-error.js'
import { GEO_RESOLVER_OPTIONS_SHAPE } from './geo-resolver-options-shape.js'
import { RegionRules, type RegionRule } from './region-rules.js'
import { ResolvedLocation } from './resolved-location.js'
import { NOT_FOUND, SearchTree } from './search-tree.js'

/** Why a lookup gave the region it gave. */
export type GeoReason = 'found' | 'not-found' | 'empty' | 'invalid' | 'private' | 'reserved'

/** What a region offers its devices and messages; all optional. The resolver keeps frozen copies of these lists, and no other keys. */
export interface RegionEndpoints {
  /** Broker URLs for devices of the region, nearest first (for redirects). */
  readonly brokers?: readonly string[]
  readonly apiUrls?: readonly string[]
  /** Replica ids (as the replica pool names them) that serve the region. */
  readonly replicas?: readonly string[]
}

/**
 * Where an address is, and the region it belongs to. Frozen, endpoints
 * included: the resolver's cache hands the same object to every caller.
 */
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

/** What a record says, resolved to a region once per record. */
interface Place {
  readonly continent: string | undefined
  readonly country: string | undefined
  readonly subdivision: string | undefined
  readonly region: string
  readonly endpoints: RegionEndpoints
}

/** A database as loaded: the reader decodes records, the tree finds them. */
interface LoadedDatabase {
  readonly reader: Reader<Response>
  readonly tree: SearchTree
  readonly version: string
}

/** Records remembered by pointer. GeoLite2-City has about 150 000 distinct records, a country database a few hundred. */
const PLACE_CACHE_SIZE = 200_000

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
export class GeoResolver implements HealthCheckSource {
  readonly #path: string
  readonly #rules: RegionRules
  readonly #endpoints: ReadonlyMap<string, RegionEndpoints>
  readonly #log: Logger
  /** A database that surprises the walk does so for every lookup: one line per episode. */
  readonly #lookupFailed: SummarisedWarning
  /** Undefined with cacheSize 0. */
  readonly #cache: LruMap<string, GeoLocation> | undefined
  readonly #reasons: Record<GeoReason, number> = { found: 0, 'not-found': 0, empty: 0, invalid: 0, private: 0, reserved: 0 }
  readonly #reloaded = new TypedEvent<{ readonly ok: boolean; readonly error?: unknown }>()
  #database: LoadedDatabase
  /** Places by record pointer, for the database loaded now. */
  #places = new Map<number, Place>()
  #lookups = 0
  #cacheHits = 0
  #reloads = 0
  #reloadFailures = 0
  #watcher: FSWatcher | undefined
  #debounce: NodeJS.Timeout | undefined
  #reloading: Promise<void> | undefined
  #reloadAgain = false
  /** Why the file on disk could not replace the database in use; cleared by a reload that took. */
  #reloadError: unknown
  /** The file version that failed to load, so that the same bad file is not tried (and logged) again. */
  #failedVersion: string | undefined

  private constructor(options: GeoResolverOptions, rules: RegionRules, database: LoadedDatabase) {
    this.#path = options.database
    this.#rules = rules
    this.#endpoints = new Map(Object.entries(options.endpoints ?? {}).map(([region, endpoints]) => [region, frozenEndpoints(endpoints)]))
    const cacheSize = options.cacheSize ?? 10_000
    this.#cache = cacheSize > 0 ? new LruMap(cacheSize) : undefined
    this.#log = safeLogger(options.logger ?? silentLogger)
    this.#lookupFailed = new SummarisedWarning(this.#log, 'GeoIP lookup failed; answering the default region')
    this.#database = database
  }

  /** Opens the database; a missing or corrupt file fails with `GeoDatabaseError` naming the path. */
  static async open(options: GeoResolverOptions): Promise<GeoResolver> {
    const rules = GeoResolver.validate(options)
    const resolver = new GeoResolver(options, rules, await load(options.database))
    if (options.watch ?? true) resolver.#watch()
    return resolver
  }

  /**
   * Checks the options without touching the file (`open` does this first):
   * `InvalidOptionError` naming the field, with `field` as the prefix.
   */
  static validate(options: GeoResolverOptions, field = 'geo'): RegionRules {
    if (!options || typeof options !== 'object') throw new InvalidOptionError(field, 'pass { database, defaultRegion, rules?, endpoints? }')
    checkOptions(options, GEO_RESOLVER_OPTIONS_SHAPE, field)
    const rules = RegionRules.compile({ rules: options.rules, defaultRegion: options.defaultRegion }, field)
    for (const region of Object.keys(options.endpoints ?? {})) {
      if (!rules.regions.includes(region)) {
        throw new InvalidOptionError(`${field}.endpoints.${region}`, `no rule names region "${region}"; regions: ${rules.regions.join(', ')}`)
      }
    }
    return rules
  }

  /** The place and region of `ip`; never throws. */
  lookup(ip: unknown): GeoLocation {
    this.#lookups++
    // Only what could be an address is cached: junk must not take the room of real entries, nor pin memory.
    const cache = typeof ip === 'string' && ip.length <= MAX_ADDRESS_LENGTH ? this.#cache : undefined
    const cached = cache?.get(ip as string)
    if (cached !== undefined) {
      this.#cacheHits++
      this.#reasons[cached.reason]++
      return cached
    }
    let location: GeoLocation
    try {
      location = this.#resolve(ip)
    } catch (error) {
      // Nothing known throws here; should a database surprise the walk, the address still gets an answer.
      this.#lookupFailed.record({ error })
      location = this.#unplaced('', 'invalid')
    }
    this.#reasons[location.reason]++
    if (location.reason !== 'invalid' && location.reason !== 'empty') cache?.set(ip as string, location)
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

  /**
   * One non-critical check, `geo`: it fails while the file on disk cannot
   * replace the database in use (missing, unreadable or corrupt; lookups
   * carry on from the one loaded), and reports the database's age in days.
   */
  healthChecks(): readonly HealthCheckDefinition[] {
    return [{
      name: 'geo',
      componentType: 'geoip-database',
      critical: false,
      intervalMs: 30_000,
      rise: 1,
      fall: 1,
      check: async () => {
        await this.#checkFile()
        if (this.#reloadError !== undefined) {
          // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever the reload threw; a non-Error has nothing better than String()
          const detail = this.#reloadError instanceof Error ? this.#reloadError.message : String(this.#reloadError)
          throw new Error(`answering from the database loaded before; the file could not be loaded: ${detail}`)
        }
        const builtAt = this.#database.reader.metadata.buildEpoch.getTime()
        return { observedValue: Math.round(((Date.now() - builtAt) / 86_400_000) * 10) / 10, observedUnit: 'days' }
      },
      watch: (recheck) => this.onReload(() => recheck()),
    }]
  }

  /** The endpoints of a region, `{}` when it has none or is not one of `regions`. */
  endpointsOf(region: string): RegionEndpoints {
    return this.#endpoints.get(region) ?? NO_ENDPOINTS
  }

  /** After each reload attempt, whether it took. */
  onReload(listener: (event: { readonly ok: boolean; readonly error?: unknown }) => void): Disposer {
    return this.#reloaded.on(listener)
  }

  /** Reads the file again now; keeps the current database if the new one cannot be opened. */
  reload(): Promise<void> {
    if (this.#reloading) {
      // The file may have changed again after the running attempt read it: one more attempt follows it.
      this.#reloadAgain = true
      return this.#reloading
    }
    const run = async (): Promise<void> => {
      do {
        this.#reloadAgain = false
        await this.#reload()
      } while (this.#reloadAgain)
    }
    this.#reloading = run().finally(() => (this.#reloading = undefined))
    return this.#reloading
  }

  /** Stops watching the file. */
  close(): void {
    clearTimeout(this.#debounce)
    this.#watcher?.close()
    this.#watcher = undefined
  }

  #resolve(ip: unknown): GeoLocation {
    // Dotted-quad IPv4, the common case, is parsed once and walked as a number.
    const v4 = typeof ip === 'string' ? parseIPv4(ip) : -1
    if (v4 >= 0) {
      const kind = ipv4Class(v4)
      return kind === 'public' ? this.#found(ip as string, this.#database.tree.find4(v4)) : this.#unplaced(ip as string, kind)
    }
    const { address, kind } = classifyAddress(ip)
    if (kind !== 'public') return this.#unplaced(address, kind)
    const mapped = parseIPv4(address)
    return this.#found(address, mapped >= 0 ? this.#database.tree.find4(mapped) : this.#database.tree.find6(ipv6Groups(address)))
  }

  #found(address: string, pointer: number): GeoLocation {
    if (pointer === NOT_FOUND) return this.#unplaced(address, 'not-found')
    let place = this.#places.get(pointer)
    if (place === undefined) {
      let record: GeoRecord | null
      try {
        record = this.#database.reader.get(address) as GeoRecord | null
      } catch {
        // A record that cannot be decoded: the database's fault, not the address's.
        return this.#unplaced(address, 'not-found')
      }
      if (!record) return this.#unplaced(address, 'not-found')
      place = this.#place(record)
      if (this.#places.size >= PLACE_CACHE_SIZE) this.#places.clear()
      this.#places.set(pointer, place)
    }
    return new ResolvedLocation(address, place.continent, place.country, place.subdivision, place.region, place.endpoints, 'found', this)
  }

  #place(record: GeoRecord): Place {
    const country = record.country?.iso_code ?? record.country_code ?? record.registered_country?.iso_code
    const continent = record.continent?.code ?? record.continent_code ?? (country === undefined ? undefined : continentOfCountry(country))
    const subdivision = record.subdivisions?.[0]?.iso_code
    const region = this.#rules.regionOf(continent, country, subdivision)
    return { continent, country, subdivision, region, endpoints: this.#endpoints.get(region) ?? NO_ENDPOINTS }
  }

  #unplaced(ip: string, reason: Exclude<GeoReason, 'found'>): GeoLocation {
    const region = this.#rules.defaultRegion
    return new ResolvedLocation(ip, undefined, undefined, undefined, region, this.#endpoints.get(region) ?? NO_ENDPOINTS, reason, this)
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

  /** Notices a file that went missing or changed without a watch event (watching off, or a lost event). */
  async #checkFile(): Promise<void> {
    let version: string | undefined
    try {
      version = await fileVersion(this.#path)
    } catch (error) {
      this.#reloadError = new GeoDatabaseError(this.#path, 'is gone or unreadable', error)
      return
    }
    if (version !== this.#database.version) await this.reload()
    else this.#reloadError = undefined
  }

  async #reload(): Promise<void> {
    let version: string | undefined
    try {
      version = await fileVersion(this.#path)
      if (version === this.#database.version) {
        this.#reloadError = undefined
        return
      }
      if (version === this.#failedVersion) return
      this.#database = await load(this.#path)
      this.#places = new Map()
      this.#cache?.clear()
      this.#reloadError = undefined
      this.#reloads++
      this.#log.info('GeoIP database reloaded', { path: this.#path })
      this.#reloaded.emit({ ok: true })
    } catch (error) {
      this.#reloadError = error
      // A corrupt file is not tried again until it changes; a read error (EMFILE, EACCES) is, at the next check.
      this.#failedVersion = error instanceof GeoDatabaseError && error.corrupt ? version : undefined
      this.#reloadFailures++
      this.#log.warn('GeoIP database not reloaded; keeping the previous one', { path: this.#path, error })
      this.#reloaded.emit({ ok: false, error })
    }
  }
}

const NO_ENDPOINTS: RegionEndpoints = Object.freeze({})
const ENDPOINT_LISTS = ['brokers', 'apiUrls', 'replicas'] as const

/** A frozen copy: the lists given in the options stay the caller's, and what lookups hand out cannot be written to. */
function frozenEndpoints(endpoints: RegionEndpoints): RegionEndpoints {
  const copy: { -readonly [K in keyof RegionEndpoints]: RegionEndpoints[K] } = {}
  for (const key of ENDPOINT_LISTS) {
    const list = endpoints[key]
    if (list !== undefined) copy[key] = Object.freeze([...list])
  }
  return Object.freeze(copy)
}

async function fileVersion(path: string): Promise<string> {
  const info = await stat(path)
  return `${info.ino}:${info.size}:${info.mtimeMs}`
}

async function load(path: string): Promise<LoadedDatabase> {
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
    const reader = new Reader<Response>(bytes)
    const { nodeCount, recordSize } = reader.metadata
    // The walk reads only inside the tree; a tree larger than the file would have it read past the end.
    if (!Number.isInteger(nodeCount) || nodeCount <= 0 || (nodeCount * recordSize) / 4 + 16 > bytes.length) {
      throw new Error(`its metadata claims ${nodeCount} search tree nodes, more than the file holds`)
    }
    return { reader, tree: new SearchTree(bytes, reader.metadata), version }
  } catch (error) {
    throw new GeoDatabaseError(path, `is not a MaxMind DB (${error instanceof Error ? error.message : String(error)})`, error, true)
  }
}
