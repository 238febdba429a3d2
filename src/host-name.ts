import { isIPv4, isIPv6 } from 'node:net'

/**
 * A host without the brackets URLs put around IPv6 addresses (`[::1]` →
 * `::1`), so hosts from URLs and from configuration compare equal and can be
 * bracketed again where a config format wants it.
 *
 * @example
 * bareHost(new URL('mqtt://[::1]:1883').hostname) // '::1'
 */
export function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}

/**
 * `host:port`, with an IPv6 host bracketed as URLs and balancer configs
 * write it.
 *
 * @example
 * hostPort('::1', 1883) // '[::1]:1883'
 */
export function hostPort(host: string, port: number): string {
  const bare = bareHost(host)
  return `${bare.includes(':') ? `[${bare}]` : bare}:${port}`
}

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/

/**
 * Whether `host` is a DNS name of RFC 1123 labels (letters, digits and inner
 * hyphens, at most 63 characters a label and 253 in all, one trailing dot
 * allowed), a dotted-quad IPv4 address, or an IPv6 address with or without
 * brackets. Such a host can be written into HAProxy, NGINX or YAML as it is;
 * WHATWG URL parsing keeps `; { } ' " $` in the host of an `mqtt:` URL,
 * which would end a directive or be expanded there.
 *
 * @example
 * isHostName('broker-1.example.com') // true
 * isHostName('[2001:db8::5]')         // true
 * isHostName('b1;"${HOME}"')          // false
 */
export function isHostName(host: string): boolean {
  const bare = bareHost(host)
  // Zone ids (fe80::1%eth0) pass isIPv6 but are not portable in configs.
  if (bare.includes(':')) return /^[0-9A-Fa-f:.]+$/.test(bare) && isIPv6(bare)
  if (bare !== host) return false
  const name = host.endsWith('.') ? host.slice(0, -1) : host
  if (name.length === 0 || name.length > 253) return false
  const labels = name.split('.')
  if (!labels.every((label) => LABEL.test(label))) return false
  // Resolvers read a name ending in digits as an IPv4 address in another form (inet_aton takes "10.1"): only a dotted quad is one.
  return !/^\d+$/.test(labels.at(-1)!) || isIPv4(host)
}
