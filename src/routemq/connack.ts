import type { IConnackPacket, MqttClient } from 'mqtt'
import { isTransientNetworkError } from './network-error.js'

/** How `awaitConnack` treats failures before the CONNACK. */
export interface AwaitConnackOptions {
  readonly timeoutMs: number
  /**
   * `'first'` (default): the first error or close ends the wait. `'retry'`:
   * the client reconnects by itself, so transient network errors and closes
   * are remembered and the wait goes on until the timeout; an error that will
   * not heal (a refused login, a bad certificate) still ends it at once.
   */
  readonly failures?: 'first' | 'retry'
}

/**
 * Resolves with the CONNACK once `client` is connected, or rejects with why it
 * was not within `timeoutMs` (the last error seen, or "no CONNACK within ...").
 * Listens only while waiting. The one CONNECT/CONNACK wait of the transports
 * and the broker pool's connections and probes.
 *
 * @example
 * const connack = await awaitConnack(client, { timeoutMs: 2000 })
 * if (!connack.sessionPresent) resubscribe()
 */
export function awaitConnack(client: MqttClient, options: AwaitConnackOptions): Promise<IConnackPacket> {
  const retry = options.failures === 'retry'
  return new Promise((resolve, reject) => {
    let lastError: Error | undefined
    const finish = (error: Error | undefined, connack?: IConnackPacket): void => {
      clearTimeout(timer)
      client.off('connect', onConnect)
      client.off('error', onError)
      client.off('close', onClose)
      if (error) reject(error)
      else resolve(connack!)
    }
    const onConnect = (connack: IConnackPacket): void => finish(undefined, connack)
    const onError = (error: Error): void => {
      lastError = error
      if (!retry || !isTransientNetworkError(error)) finish(error)
    }
    const onClose = (): void => {
      if (!retry) finish(lastError ?? new Error('connection closed before CONNACK'))
      else lastError ??= new Error('connection closed before CONNACK')
    }
    const timer = setTimeout(() => finish(lastError ?? new Error(`no CONNACK within ${options.timeoutMs} ms`)), options.timeoutMs)
    client.on('connect', onConnect)
    client.on('error', onError)
    client.on('close', onClose)
  })
}
