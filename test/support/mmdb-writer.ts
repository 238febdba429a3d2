import { isIPv4, isIPv6 } from 'node:net'

/**
 * An unsigned integer of a given width: MaxMind's own databases type
 * `geoname_id` as uint32, metadata fields as uint16, and so on. A plain
 * number is written as a uint32 (a double when it is not a whole number).
 */
export class MmdbUint {
  constructor(
    readonly value: number | bigint,
    readonly bytes: 2 | 4 | 8 | 16,
  ) {}
}

/** A value the MaxMind DB data section can hold. */
export type MmdbValue =
  | string
  | boolean
  | number
  | bigint
  | Buffer
  | MmdbUint
  | readonly MmdbValue[]
  | { readonly [key: string]: MmdbValue }

/** Options of `writeMmdb`. */
export interface MmdbOptions {
  /** `metadata.database_type`, e.g. `'GeoLite2-City'` or `'ip-location-db-country'`. */
  readonly databaseType: string
  /** 6 (IPv4 and IPv6, IPv4 under ::/96 with ::ffff:0:0/96 aliased to it) or 4. Default 6. */
  readonly ipVersion?: 4 | 6
  readonly languages?: readonly string[]
  readonly description?: Readonly<Record<string, string>>
  /** Bits per search-tree record: 24, 28 or 32. Default 24. */
  readonly recordSize?: 24 | 28 | 32
  /** `metadata.build_epoch`, seconds. Default 0, so fixtures are byte-for-byte reproducible. */
  readonly buildEpoch?: number
}

/** One network and its record. */
export interface MmdbEntry {
  /** CIDR, e.g. `'81.2.69.0/24'` or `'2001:db8::/32'`. */
  readonly network: string
  readonly data: MmdbValue
}

interface Node {
  left: Child
  right: Child
}
type Child = Node | { readonly data: MmdbValue } | undefined

const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com')])
const SEPARATOR = 16

/**
 * Writes a MaxMind DB (format 2.0: binary search tree with 24, 28 or 32-bit records,
 * data section, metadata) from networks and their records, for test
 * fixtures; no npm package writes them. Covers what GeoIP2/GeoLite2 and
 * flat country databases use: maps, arrays, strings, unsigned integers,
 * doubles, booleans and bytes. A more specific network inside a less
 * specific one wins, as in MaxMind's databases.
 *
 * @example
 * const db = writeMmdb([{ network: '81.2.69.0/24', data: { country: { iso_code: 'GB' } } }], { databaseType: 'GeoLite2-Country' })
 * await writeFile(path, db)
 */
export function writeMmdb(entries: readonly MmdbEntry[], options: MmdbOptions): Buffer {
  const ipVersion = options.ipVersion ?? 6
  const recordBits = options.recordSize ?? 24
  const root: Node = { left: undefined, right: undefined }
  const sorted = entries.map((entry) => ({ ...parseNetwork(entry.network, ipVersion), data: entry.data })).sort((a, b) => a.length - b.length)
  for (const { bits, length, data } of sorted) insert(root, bits, length, { data })
  if (ipVersion === 6) aliasMappedIpv4(root)

  const data = new DataSection()
  const numbering = new Map<Node, number>()
  const order: Node[] = []
  const visit = (node: Node): void => {
    if (numbering.has(node)) return
    numbering.set(node, order.length)
    order.push(node)
    for (const child of [node.left, node.right]) if (child && !('data' in child)) visit(child)
  }
  visit(root)
  const nodeCount = order.length
  const record = (child: Child): number => {
    if (child === undefined) return nodeCount
    if ('data' in child) return nodeCount + SEPARATOR + data.offsetOf(child.data)
    return numbering.get(child)!
  }
  const nodeBytes = recordBits / 4
  const tree = Buffer.alloc(nodeCount * nodeBytes)
  order.forEach((node, i) => writeNode(tree, i * nodeBytes, recordBits, checkRecord(record(node.left), recordBits), checkRecord(record(node.right), recordBits)))

  const metadata = encode({
    node_count: new MmdbUint(nodeCount, 4),
    record_size: new MmdbUint(recordBits, 2),
    ip_version: new MmdbUint(ipVersion, 2),
    database_type: options.databaseType,
    languages: [...(options.languages ?? ['en'])],
    binary_format_major_version: new MmdbUint(2, 2),
    binary_format_minor_version: new MmdbUint(0, 2),
    build_epoch: new MmdbUint(options.buildEpoch ?? 0, 8),
    description: { ...(options.description ?? { en: 'test fixture' }) },
  })
  return Buffer.concat([tree, Buffer.alloc(SEPARATOR), data.bytes(), METADATA_MARKER, metadata])
}

function checkRecord(value: number, bits: number): number {
  if (value >= 2 ** bits) throw new Error(`record value ${value} does not fit ${bits} bits; the fixture is too large`)
  return value
}

/** One node, two records, laid out as the format spec says for each record size. */
function writeNode(tree: Buffer, at: number, bits: 24 | 28 | 32, left: number, right: number): void {
  if (bits === 24) {
    tree.writeUIntBE(left, at, 3)
    tree.writeUIntBE(right, at + 3, 3)
  } else if (bits === 28) {
    // The middle byte holds the top four bits of the left record, then those of the right one.
    tree.writeUIntBE(left % 0x1000000, at, 3)
    tree[at + 3] = (Math.floor(left / 0x1000000) << 4) | Math.floor(right / 0x1000000)
    tree.writeUIntBE(right % 0x1000000, at + 4, 3)
  } else {
    tree.writeUInt32BE(left, at)
    tree.writeUInt32BE(right, at + 4)
  }
}

function parseNetwork(network: string, ipVersion: 4 | 6): { bits: Uint8Array; length: number } {
  const [address, prefix] = network.split('/')
  const length = Number(prefix)
  if (address === undefined || !Number.isInteger(length)) throw new Error(`bad network ${network}`)
  if (isIPv4(address)) {
    if (length > 32) throw new Error(`bad prefix in ${network}`)
    const v4 = address.split('.').map(Number)
    if (ipVersion === 4) return { bits: Uint8Array.from(v4), length }
    // IPv4 lives under ::/96 in an IPv6 tree.
    return { bits: Uint8Array.from([...new Array<number>(12).fill(0), ...v4]), length: 96 + length }
  }
  if (ipVersion === 4 || !isIPv6(address)) throw new Error(`bad address in ${network} for an IPv${ipVersion} database`)
  if (length > 128) throw new Error(`bad prefix in ${network}`)
  return { bits: ipv6Bytes(address), length }
}

function ipv6Bytes(address: string): Uint8Array {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined]
  const groups = (part: string | undefined) => (part ? part.split(':').filter(Boolean) : [])
  const left = groups(head)
  const right = groups(tail)
  const middle = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0')
  const all = [...left, ...middle, ...right]
  if (all.length !== 8) throw new Error(`cannot parse ${address}`)
  const bytes = new Uint8Array(16)
  all.forEach((group, i) => {
    const value = parseInt(group, 16)
    bytes[i * 2] = value >> 8
    bytes[i * 2 + 1] = value & 0xff
  })
  return bytes
}

function bitAt(bytes: Uint8Array, index: number): number {
  return (bytes[index >> 3]! >> (7 - (index & 7))) & 1
}

function insert(root: Node, bits: Uint8Array, length: number, leaf: Child): void {
  let node = root
  for (let depth = 0; depth < length; depth++) {
    const side = bitAt(bits, depth) ? 'right' : 'left'
    if (depth === length - 1) {
      node[side] = leaf
      return
    }
    let child = node[side]
    // A shorter network already covers this path: split it, both halves keep its record.
    if (child === undefined || 'data' in child) child = node[side] = { left: child, right: child }
    node = child
  }
  throw new Error('a network of length 0 is not supported')
}

/** ::ffff:0:0/96 points at the IPv4 subtree (the node under ::/96), as in MaxMind's databases. */
function aliasMappedIpv4(root: Node): void {
  let ipv4: Child = root
  for (let depth = 0; depth < 96 && ipv4 && !('data' in ipv4); depth++) ipv4 = ipv4.left
  if (!ipv4 || 'data' in ipv4 || ipv4 === root) return
  let node = root
  for (let depth = 0; depth < 95; depth++) {
    const side = depth < 80 ? 'left' : 'right'
    let child = node[side]
    if (child === undefined) child = node[side] = { left: undefined, right: undefined }
    if ('data' in child) return
    node = child
  }
  node.right = ipv4
}

class DataSection {
  readonly #chunks: Buffer[] = []
  readonly #offsets = new Map<string, number>()
  #size = 0

  offsetOf(value: MmdbValue): number {
    const key = JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof MmdbUint ? `u${v.bytes}:${v.value}` : v))
    let offset = this.#offsets.get(key)
    if (offset === undefined) {
      const bytes = encode(value)
      offset = this.#size
      this.#offsets.set(key, offset)
      this.#chunks.push(bytes)
      this.#size += bytes.length
    }
    return offset
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks)
  }
}

const UINT_TYPES: Readonly<Record<MmdbUint['bytes'], number>> = { 2: 5, 4: 6, 8: 9, 16: 10 }

function encode(value: MmdbValue): Buffer {
  if (typeof value === 'string') return withControl(2, Buffer.from(value, 'utf8'))
  if (typeof value === 'boolean') return control(14, value ? 1 : 0)
  if (typeof value === 'bigint') return withControl(9, minimalBytes(value))
  if (value instanceof MmdbUint) return withControl(UINT_TYPES[value.bytes], minimalBytes(BigInt(value.value)))
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value <= 0xffffffff) return withControl(6, minimalBytes(BigInt(value)))
    const double = Buffer.alloc(8)
    double.writeDoubleBE(value)
    return withControl(3, double)
  }
  if (Buffer.isBuffer(value)) return withControl(4, value)
  if (Array.isArray(value)) return Buffer.concat([control(11, value.length), ...value.map(encode)])
  const map = value as { readonly [key: string]: MmdbValue }
  const keys = Object.keys(map)
  return Buffer.concat([control(7, keys.length), ...keys.flatMap((key) => [encode(key), encode(map[key]!)])])
}

function minimalBytes(value: bigint): Buffer {
  const bytes: number[] = []
  for (let rest = value; rest > 0n; rest >>= 8n) bytes.unshift(Number(rest & 0xffn))
  return Buffer.from(bytes)
}

function withControl(type: number, payload: Buffer): Buffer {
  return Buffer.concat([control(type, payload.length), payload])
}

/** The control byte(s): type in the top 3 bits (or 0 and an extended type byte), size in the low 5 (plus extension bytes). */
function control(type: number, size: number): Buffer {
  const bytes: number[] = []
  let sizeBits: number
  const extra: number[] = []
  if (size < 29) sizeBits = size
  else if (size < 285) {
    sizeBits = 29
    extra.push(size - 29)
  } else if (size < 65_821) {
    sizeBits = 30
    extra.push((size - 285) >> 8, (size - 285) & 0xff)
  } else {
    sizeBits = 31
    const rest = size - 65_821
    extra.push((rest >> 16) & 0xff, (rest >> 8) & 0xff, rest & 0xff)
  }
  if (type <= 7) bytes.push((type << 5) | sizeBits)
  else bytes.push(sizeBits, type - 7)
  return Buffer.from([...bytes, ...extra])
}
