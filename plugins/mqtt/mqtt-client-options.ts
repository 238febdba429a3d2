import type { IClientOptions } from 'mqtt'
import type { BrokerEndpoint } from './broker-endpoint.js'

/**
 * The MQTT.js options shared by the pool's connections and probes: login,
 * TLS, protocol, and no reconnecting of MQTT.js's own, since the pool
 * decides where and when to connect.
 *
 * @example
 * connect(endpoint.url, { ...clientOptions(endpoint, 'app-1', 5, 2000), clean: true })
 */
export function clientOptions(endpoint: BrokerEndpoint, clientId: string, protocolVersion: 4 | 5, connectTimeoutMs: number): IClientOptions {
  return {
    clientId,
    protocolVersion,
    username: endpoint.username,
    password: endpoint.password,
    connectTimeout: connectTimeoutMs,
    reconnectPeriod: 0,
    resubscribe: false,
    queueQoSZero: false,
    ...(endpoint.tls
      ? {
          ca: endpoint.tls.ca as never,
          cert: endpoint.tls.cert,
          key: endpoint.tls.key,
          rejectUnauthorized: endpoint.tls.rejectUnauthorized ?? true,
        }
      : {}),
  }
}
