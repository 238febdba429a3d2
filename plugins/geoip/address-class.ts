import { BlockList, isIPv4, isIPv6 } from 'node:net'

/** Why an address is not looked up: not an address, or one no database places anywhere. */
export type AddressClass = 'public' | 'empty' | 'invalid' | 'private' | 'reserved'

const PRIVATE = new BlockList()
PRIVATE.addSubnet('10.0.0.0', 8)
PRIVATE.addSubnet('172.16.0.0', 12)
PRIVATE.addSubnet('192.168.0.0', 16)
PRIVATE.addSubnet('127.0.0.0', 8)
PRIVATE.addSubnet('169.254.0.0', 16)
PRIVATE.addSubnet('100.64.0.0', 10)
PRIVATE.addSubnet('::1', 128, 'ipv6')
PRIVATE.addSubnet('fc00::', 7, 'ipv6')
PRIVATE.addSubnet('fe80::', 10, 'ipv6')

const RESERVED = new BlockList()
RESERVED.addSubnet('0.0.0.0', 8)
RESERVED.addSubnet('192.0.0.0', 24)
RESERVED.addSubnet('192.0.2.0', 24)
RESERVED.addSubnet('198.18.0.0', 15)
RESERVED.addSubnet('198.51.100.0', 24)
RESERVED.addSubnet('203.0.113.0', 24)
RESERVED.addSubnet('224.0.0.0', 4)
RESERVED.addSubnet('240.0.0.0', 4)
RESERVED.addSubnet('::', 128, 'ipv6')
RESERVED.addSubnet('2001:db8::', 32, 'ipv6')
RESERVED.addSubnet('ff00::', 8, 'ipv6')

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

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
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '')) return { address: '', kind: 'empty' }
  if (typeof raw !== 'string') return { address: String(raw).slice(0, 64), kind: 'invalid' }
  let address = raw.trim()
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1)
  const zone = address.indexOf('%')
  if (zone > 0) address = address.slice(0, zone)
  const mapped = MAPPED.exec(address)
  if (mapped) address = mapped[1]!
  if (isIPv4(address)) {
    if (PRIVATE.check(address, 'ipv4')) return { address, kind: 'private' }
    if (RESERVED.check(address, 'ipv4')) return { address, kind: 'reserved' }
    return { address, kind: 'public' }
  }
  if (isIPv6(address)) {
    const lower = address.toLowerCase()
    if (PRIVATE.check(lower, 'ipv6')) return { address: lower, kind: 'private' }
    if (RESERVED.check(lower, 'ipv6')) return { address: lower, kind: 'reserved' }
    return { address: lower, kind: 'public' }
  }
  return { address: address.slice(0, 64), kind: 'invalid' }
}
