import { connect } from 'node:net'

/**
 * Resolves `true` when a TCP connection to `host:port` is accepted (and closes
 * it at once), `false` when it is refused or fails.
 *
 * @example
 * if (!(await acceptsConnections('127.0.0.1', 1883))) throw new Error('broker down')
 */
export function acceptsConnections(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => {
      socket.destroy()
      resolve(false)
    })
  })
}
