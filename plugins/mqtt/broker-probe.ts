import { connect } from 'mqtt'
import { awaitConnack } from '../../src/routemq/transport-api.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { clientOptions } from './mqtt-client-options.js'

/** Options of `probeBroker`. */
export interface ProbeOptions {
  /** The probe's own client id: a second connection with the app's id would kick the app's off. */
  readonly clientId: string
  readonly timeoutMs: number
  readonly protocolVersion: 4 | 5
}

/**
 * Checks a broker the way a client sees it: CONNECT, and a CONNACK accepting
 * it within the timeout (a TCP accept alone proves nothing: a wedged broker
 * or a blackholed path accepts and never answers). Resolves with the round
 * trip in ms; rejects with the reason.
 *
 * @example
 * const rttMs = await probeBroker(endpoint, { clientId: 'app-1-probe-0', timeoutMs: 800, protocolVersion: 5 })
 */
export async function probeBroker(endpoint: BrokerEndpoint, options: ProbeOptions): Promise<number> {
  const started = performance.now()
  const client = connect(endpoint.url, {
    ...clientOptions(endpoint, options.clientId, options.protocolVersion, options.timeoutMs),
    clean: true,
    keepalive: 0,
  })
  client.on('error', noop)
  try {
    await awaitConnack(client, { timeoutMs: options.timeoutMs })
  } catch (error) {
    client.end(true)
    throw error
  }
  const rttMs = performance.now() - started
  client.end(false)
  return rttMs
}

function noop(): void {}
