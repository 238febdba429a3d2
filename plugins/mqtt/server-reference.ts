import type { BrokerEndpoint } from './broker-endpoint.js'

/**
 * The configured broker an MQTT 5 Server Reference points to, if any. A
 * reference is `host`, `host:port`, `[v6]:port` or a URL, possibly several
 * separated by spaces (the first is used); a missing port means the port of
 * the broker that sent it.
 *
 * @example
 * findReferencedBroker('node2.emqx:1883', endpoints, 1883) // the endpoint for node2.emqx:1883
 */
export function findReferencedBroker(
  reference: string,
  brokers: readonly BrokerEndpoint[],
  defaultPort: number,
): { readonly host: string; readonly port: number; readonly broker: BrokerEndpoint | undefined } {
  const first = reference.trim().split(/\s+/)[0] ?? ''
  let host = first
  let port = defaultPort
  try {
    const url = new URL(first.includes('://') ? first : `mqtt://${first}`)
    host = url.hostname.replace(/^\[|\]$/g, '')
    if (url.port) port = Number(url.port)
  } catch {
    // Not parseable as host[:port]: compared as a bare host name.
  }
  const broker = brokers.find((b) => b.host.replace(/^\[|\]$/g, '').toLowerCase() === host.toLowerCase() && b.port === port)
  return { host, port, broker }
}
