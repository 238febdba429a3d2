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
