import { createServer, type Server } from 'node:net'
import { TopologyError } from './topology-error.js'

/**
 * Asks the OS for a TCP port that is free on `host` right now, by listening
 * on port 0 and closing again. Another process may still take it before you
 * bind, so bind soon.
 *
 * @example
 * const port = await freePort()
 * proxy.listen(port, '127.0.0.1')
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await freePorts(1, host)
  return port as number
}

/**
 * Like {@link freePort}, for `count` distinct ports: all listeners stay open
 * until every port is known, so the OS cannot hand out the same port twice.
 *
 * @example
 * const [mqttPort, wsPort] = await freePorts(2)
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = []
  try {
    for (let i = 0; i < count; i++) {
      servers.push(await listenOnAnyPort(host))
    }
    return servers.map((server) => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        throw new TopologyError(`Listening on ${host}:0 did not yield a TCP port; pass an IP address as host, not a socket path.`)
      }
      return address.port
    })
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  }
}

function listenOnAnyPort(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    const fail = (error: Error): void =>
      reject(
        new TopologyError(`Cannot listen on ${host}:0 to find a free port (${error.message}); pass an address of this machine as host.`, {
          cause: error,
        }),
      )
    server.once('error', fail)
    server.listen({ port: 0, host, exclusive: true }, () => {
      server.off('error', fail)
      resolve(server)
    })
  })
}
