import { isIPv6 } from 'node:net'

/** Why an address is not looked up: not an address, or one no database places anywhere. */
export type AddressClass = 'public' | 'empty' | 'invalid' | 'private' | 'reserved'

/** [first address as a 32-bit number, prefix length] */
type Range4 = readonly [number, number]

const ip4 = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0
// Private, loopback, link-local and shared (carrier-grade NAT) space.
const PRIVATE4: readonly Range4[] = [[ip4(10, 0, 0, 0), 8], [ip4(172, 16, 0, 0), 12], [ip4(192, 168, 0, 0), 16], [ip4(127, 0, 0, 0), 8], [ip4(169, 254, 0, 0), 16], [ip4(100, 64, 0, 0), 10]]
// "This network", IETF protocol assignments, documentation, benchmarking, multicast and future use.
const RESERVED4: readonly Range4[] = [
  [ip4(0, 0, 0, 0), 8], [ip4(192, 0, 0, 0), 24], [ip4(192, 0, 2, 0), 24], [ip4(198, 18, 0, 0), 15], [ip4(198, 51, 100, 0), 24],
  [ip4(203, 0, 113, 0), 24], [ip4(224, 0, 0, 0), 4], [ip4(240, 0, 0, 0), 4],
]
const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/** Start and mask of each range, flat, for a loop without allocation. */
function compile(ranges: readonly Range4[]): Uint32Array {
  const flat = new Uint32Array(ranges.length * 2)
  ranges.forEach(([start, bits], i) => {
    flat[i * 2] = start
    flat[i * 2 + 1] = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
  })
  return flat
}
const PRIVATE4_FLAT = compile(PRIVATE4)
const RESERVED4_FLAT = compile(RESERVED4)

function inRanges(address: number, ranges: Uint32Array): boolean {
  for (let i = 0; i < ranges.length; i += 2) if (((address & ranges[i + 1]!) >>> 0) === ranges[i]) return true
  return false
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number, or -1; parsed by hand, as this runs for every uncached lookup. */
export function parseIPv4(text: string): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c >= 48 && c <= 57) {
      // A leading zero ('010') is refused, as Node's isIP does: inet_aton would read it as octal.
      if (digits === 1 && part === 0) return -1
      part = part * 10 + (c - 48)
      if (++digits > 3 || part > 255) return -1
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + part
      part = 0
      digits = 0
      dots++
    } else {
      return -1
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + part : -1
}

/** The class of an IPv4 address given as `parseIPv4` returns it. */
export function ipv4Class(value: number): 'public' | 'private' | 'reserved' {
  if (inRanges(value, PRIVATE4_FLAT)) return 'private'
  if (inRanges(value, RESERVED4_FLAT)) return 'reserved'
  return 'public'
}

function classify4(value: number, address: string): { readonly address: string; readonly kind: AddressClass } {
  return { address, kind: ipv4Class(value) }
}

/**
 * The eight 16-bit groups of an IPv6 address that `net.isIPv6` accepted
 * (zone id already removed); a trailing dotted quad fills the last two.
 */
export function ipv6Groups(address: string): Uint16Array {
  const groups = new Uint16Array(8)
  let text = address
  const tail: number[] = []
  const lastColon = text.lastIndexOf(':')
  if (text.indexOf('.', lastColon) > lastColon) {
    const [a = 0, b = 0, c = 0, d = 0] = text.slice(lastColon + 1).split('.').map(Number)
    tail.push((a << 8) | b, (c << 8) | d)
    text = text.slice(0, lastColon + 1)
    if (!text.endsWith('::')) text = text.slice(0, -1)
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)))
  const gap = text.indexOf('::')
  const head = parse(gap >= 0 ? text.slice(0, gap) : text)
  const rest = [...(gap >= 0 ? parse(text.slice(gap + 2)) : []), ...tail]
  head.forEach((group, i) => (groups[i] = group))
  rest.forEach((group, i) => (groups[8 - rest.length + i] = group))
  return groups
}

function classify6(address: string): { readonly address: string; readonly kind: AddressClass } {
  const groups = ipv6Groups(address)
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    // IPv4-mapped written in hex (::ffff:5102:45a0): the IPv4 address it maps.
    const value = (groups[6]! * 0x10000 + groups[7]!) >>> 0
    return classify4(value, `${value >>> 24}.${(value >>> 16) & 0xff}.${(value >>> 8) & 0xff}.${value & 0xff}`)
  }
  if (groups.every((group, i) => group === (i === 7 ? 1 : 0))) return { address, kind: 'private' }
  if (groups.every((group) => group === 0)) return { address, kind: 'reserved' }
  const h0 = groups[0]!
  const h1 = groups[1]!
  if ((h0 & 0xfe00) === 0xfc00 || (h0 & 0xffc0) === 0xfe80) return { address, kind: 'private' }
  if ((h0 & 0xff00) === 0xff00 || (h0 === 0x2001 && h1 === 0x0db8)) return { address, kind: 'reserved' }
  return { address, kind: 'public' }
}

/**
 * An address as the resolver will look it up: IPv4-mapped IPv6
 * (`::ffff:1.2.3.4`) becomes the IPv4 address, brackets and zone ids go, and
 * private, loopback, link-local, shared, documentation, multicast and
 * unspecified addresses are told apart from public ones.
 *
 * @example
 * classifyAddress('::ffff:10.0.0.1') // { address: '10.0.0.1', kind: 'private' }
 */
export function classifyAddress(raw: unknown): { readonly address: string; readonly kind: AddressClass } {
  if (typeof raw !== 'string') {
    if (raw === undefined || raw === null) return { address: '', kind: 'empty' }
    return { address: describe(raw), kind: 'invalid' }
  }
  const v4 = parseIPv4(raw)
  if (v4 >= 0) return classify4(v4, raw)
  // Longer than any written address (45 characters, brackets and a zone id aside): not one.
  if (raw.length > MAX_ADDRESS_LENGTH) return { address: raw.slice(0, 64), kind: 'invalid' }
  let address = raw.trim()
  if (address === '') return { address: '', kind: 'empty' }
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1)
  const trimmed = parseIPv4(address)
  if (trimmed >= 0) return classify4(trimmed, address)
  // A zone id belongs to IPv6 only ('fe80::1%eth0').
  const zone = address.indexOf('%')
  if (zone > 0 && address.includes(':')) address = address.slice(0, zone)
  const plain = MAPPED.exec(address)?.[1]
  const mapped = plain === undefined ? -1 : parseIPv4(plain)
  if (mapped >= 0) return classify4(mapped, plain!)
  if (isIPv6(address)) return classify6(address.toLowerCase())
  return { address: address.slice(0, 64), kind: 'invalid' }
}

/** The longest input worth parsing: a full IPv6 address with an IPv4 tail, brackets and a long zone id. */
export const MAX_ADDRESS_LENGTH = 100

/** A short text for what was given instead of an address; never throws (objects may refuse to become strings). */
function describe(raw: unknown): string {
  try {
    return String(raw).slice(0, 64)
  } catch {
    return Object.prototype.toString.call(raw)
  }
}
