import { connect } from 'mqtt'
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
export function probeBroker(endpoint: BrokerEndpoint, options: ProbeOptions): Promise<number> {
  const started = performance.now()
  const client = connect(endpoint.url, {
    ...clientOptions(endpoint, options.clientId, options.protocolVersion, options.timeoutMs),
    clean: true,
    keepalive: 0,
  })
  return new Promise<number>((resolve, reject) => {
    const finish = (error: Error | undefined): void => {
      clearTimeout(timer)
      client.removeAllListeners('connect')
      client.removeAllListeners('close')
      client.on('error', noop)
      if (error) {
        client.end(true)
        reject(error)
      } else {
        client.end(false)
        resolve(performance.now() - started)
      }
    }
    const timer = setTimeout(() => finish(new Error(`no CONNACK within ${options.timeoutMs} ms`)), options.timeoutMs)
    client.once('connect', () => finish(undefined))
    client.once('error', (error) => finish(error))
    client.once('close', () => finish(new Error('connection closed before CONNACK')))
  })
}

function noop(): void {}
