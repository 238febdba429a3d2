import type { MqttTlsOptions } from '../../src/routemq/plugin-api.js'

/** One broker of a pool, resolved and validated: where it is and how to log in. */
export interface BrokerEndpoint {
  /** Stable name for logs, events and metrics: the configured id, or `host:port`. */
  readonly id: string
  /** The URL to connect to, without credentials. */
  readonly url: string
  readonly host: string
  readonly port: number
  readonly protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss'
  readonly username: string | undefined
  readonly password: string | undefined
  readonly tls: MqttTlsOptions | undefined
  readonly weight: number
  readonly region: string | undefined
}
