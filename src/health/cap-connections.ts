import type { Server } from 'node:http'
import type { Socket } from 'node:net'

/**
 * Caps a node:http server's connections at `max` and keeps one of them free
 * for the next client: whenever an arrival takes the last free slot, the
 * connection that has waited longest without a request in progress (a
 * stalled client, or a keep-alive connection between requests) is closed. A
 * probe sends its request as soon as it connects, so a flood of stalled
 * connections only pushes out its own oldest ones and the probe is answered
 * at once, not when a timeout frees a slot. Only while every connection has
 * a request in progress is an arrival turned away (by node:http, at
 * `server.maxConnections`); the server's timeouts bound how long that lasts.
 *
 * @example
 * capConnections(createServer(handler), 32)
 */
export function capConnections(server: Server, max: number): void {
  // Connections with no request in progress, longest waiting first (a Set keeps insertion order).
  const waiting = new Set<Socket>()
  // Connections with requests in progress, and how many (pipelined requests overlap).
  const busy = new Map<Socket, number>()

  server.maxConnections = max
  server.on('connection', (socket: Socket) => {
    waiting.add(socket)
    socket.once('close', () => {
      waiting.delete(socket)
      busy.delete(socket)
    })
    if (waiting.size + busy.size < max) return
    for (const oldest of waiting) {
      if (oldest === socket) continue
      waiting.delete(oldest)
      oldest.destroy()
      return
    }
  })
  // Ahead of the handler, which may answer (and so free the connection) before a later listener runs.
  server.prependListener('request', (request, response) => {
    const socket = request.socket
    waiting.delete(socket)
    busy.set(socket, (busy.get(socket) ?? 0) + 1)
    response.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1
      if (left > 0) {
        busy.set(socket, left)
        return
      }
      busy.delete(socket)
      // Back at the end of the line: it waits for its next request from now on.
      if (!socket.destroyed) waiting.add(socket)
    })
  })
}
