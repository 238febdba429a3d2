// npm run bench:geo: lookups per second through GeoResolver and through the raw
// maxmind Reader on the same database, cached (a working set of 1 000 addresses,
// as a fleet's devices repeat) and uncached (every address new), in one run.
// The database gives each of its 50 000 networks a record of its own, the worst
// case for GeoResolver's per-record cache (a real country database has a few
// hundred records); a third row measures the first lookup of each record, where
// GeoResolver walks the tree twice (once itself, once in the Reader).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import maxmind, { Reader } from 'maxmind'
import { GeoResolver } from '../../plugins/geoip/geo-resolver.js'
import { MmdbUint, writeMmdb, type MmdbEntry } from '../support/mmdb-writer.js'
import { printTable } from '../support/print-table.js'
import { seededRandom } from '../support/seeded-random.js'

const NETWORKS = 50_000
const WORKING_SET = 1_000
const UNCACHED = 400_000
const CACHED = 2_000_000
const ROUNDS = 3

const random = seededRandom(7)
const countries = ['US', 'GB', 'DE', 'FR', 'JP', 'AU', 'BR', 'IN', 'ZA', 'CA']
const continents: Record<string, string> = { US: 'NA', CA: 'NA', GB: 'EU', DE: 'EU', FR: 'EU', JP: 'AS', IN: 'AS', AU: 'OC', BR: 'SA', ZA: 'AF' }
const publicA = (): number => {
  for (;;) {
    const a = 1 + Math.floor(random() * 222)
    if (![10, 100, 127, 169, 172, 192, 198, 203].includes(a)) return a
  }
}
const entries: MmdbEntry[] = []
const seen = new Set<string>()
while (entries.length < NETWORKS) {
  const network = `${publicA()}.${Math.floor(random() * 256)}.${Math.floor(random() * 256)}.0/24`
  if (seen.has(network)) continue
  seen.add(network)
  const country = countries[entries.length % countries.length]!
  entries.push({ network, data: { continent: { code: continents[country]! }, country: { iso_code: country, geoname_id: new MmdbUint(entries.length, 4) } } })
}
const addressIn = (network: string): string => network.replace(/0\/24$/, String(1 + Math.floor(random() * 254)))
const workingSet = Array.from({ length: WORKING_SET }, (_, i) => addressIn(entries[(i * 37) % entries.length]!.network))
const fresh = Array.from({ length: UNCACHED }, (_, i) => addressIn(entries[(i * 7919) % entries.length]!.network))

const dir = await mkdtemp(join(tmpdir(), 'bench-geo-'))
const path = join(dir, 'bench.mmdb')
await writeFile(path, writeMmdb(entries, { databaseType: 'GeoIP2-Country' }))
const bytes = await readFile(path)
const rules = [{ region: 'americas', continents: ['NA', 'SA'] }, { region: 'apac', continents: ['AS', 'OC'] }, { region: 'emea', continents: ['EU', 'AF'] }]

// The raw reader at its best for each row: as maxmind.open sets it up (an LRU of 10 000 decoded records; the
// tree walk still runs) for the working set, and without that LRU for new addresses, where it only costs time.
const rawCached = await maxmind.open(path)
const rawUncached = new Reader(bytes)
const oursCached = await GeoResolver.open({ database: path, rules, defaultRegion: 'emea', watch: false, cacheSize: 10_000 })
const oursUncached = await GeoResolver.open({ database: path, rules, defaultRegion: 'emea', watch: false, cacheSize: 0 })

let sink = 0
function perSecond(lookup: (ip: string) => unknown, addresses: readonly string[], count: number): number {
  const started = process.hrtime.bigint()
  for (let i = 0; i < count; i++) if (lookup(addresses[i % addresses.length]!)) sink++
  return count / (Number(process.hrtime.bigint() - started) / 1e9)
}

// One address in each network, for the first-lookup row: each round gets a fresh resolver and reader.
const firstOfEach = entries.map((entry) => addressIn(entry.network))
async function firstLookups(round: number): Promise<{ ours: number; raw: number }> {
  const ours = await GeoResolver.open({ database: path, rules, defaultRegion: 'emea', watch: false, cacheSize: 0 })
  const raw = new Reader(bytes)
  const order = round % 2 === 0 ? (['raw', 'ours'] as const) : (['ours', 'raw'] as const)
  const result = { ours: 0, raw: 0 }
  for (const who of order) result[who] = who === 'ours' ? perSecond((ip) => ours.lookup(ip), firstOfEach, firstOfEach.length) : perSecond((ip) => raw.get(ip), firstOfEach, firstOfEach.length)
  ours.close()
  return result
}
const firstRuns = { ours: [] as number[], raw: [] as number[] }

const runs = { ours_cached_per_s: [] as number[], raw_cached_per_s: [] as number[], ours_uncached_per_s: [] as number[], raw_uncached_per_s: [] as number[] }
// Warm up each, then take the best of interleaved rounds, so that neither gets the quieter moments.
perSecond((ip) => rawCached.get(ip), workingSet, 200_000)
perSecond((ip) => oursCached.lookup(ip), workingSet, 200_000)
perSecond((ip) => rawUncached.get(ip), fresh, 100_000)
perSecond((ip) => oursUncached.lookup(ip), fresh, 100_000)
for (let round = 0; round < ROUNDS; round++) {
  runs.raw_cached_per_s.push(perSecond((ip) => rawCached.get(ip), workingSet, CACHED))
  runs.ours_cached_per_s.push(perSecond((ip) => oursCached.lookup(ip), workingSet, CACHED))
  runs.raw_uncached_per_s.push(perSecond((ip) => rawUncached.get(ip), fresh, UNCACHED))
  runs.ours_uncached_per_s.push(perSecond((ip) => oursUncached.lookup(ip), fresh, UNCACHED))
  const first = await firstLookups(round)
  firstRuns.ours.push(first.ours)
  firstRuns.raw.push(first.raw)
}
oursCached.close()
oursUncached.close()
await rm(dir, { recursive: true, force: true })

const best = Object.fromEntries(Object.entries(runs).map(([key, values]) => [key, Math.round(Math.max(...values))])) as Record<keyof typeof runs, number>
const format = (n: number): string => n.toLocaleString('en-US')
printTable(`GeoIP lookups per second, ${format(NETWORKS)} networks, best of ${ROUNDS} interleaved rounds (ours resolves the region and classifies the address too)`, [
  ['lookups', 'GeoResolver', 'maxmind Reader', 'ratio'],
  ['cached (1 000 addresses)', format(best.ours_cached_per_s), format(best.raw_cached_per_s), (best.ours_cached_per_s / best.raw_cached_per_s).toFixed(2)],
  ['uncached (every address new)', format(best.ours_uncached_per_s), format(best.raw_uncached_per_s), (best.ours_uncached_per_s / best.raw_uncached_per_s).toFixed(2)],
  ['first lookup of each record', format(Math.round(Math.max(...firstRuns.ours))), format(Math.round(Math.max(...firstRuns.raw))), (Math.max(...firstRuns.ours) / Math.max(...firstRuns.raw)).toFixed(2)],
])
if (sink === 0) console.log('(no lookup found anything)')
console.log(JSON.stringify(best))
