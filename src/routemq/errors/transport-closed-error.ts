import { RouteMqError } from './route-mq-error.js'

/**
 * A publish or subscribe was attempted on a transport that has been closed,
 * typically from a handler still running after `Application.stop()` gave up
 * waiting for it; or the transport closed before the broker acknowledged a
 * publish, which then may or may not have been delivered.
 *
 * @example
 * await app.stop()
 * await ctx.publish('late', 'x') // rejects with TransportClosedError
 */
export class TransportClosedError extends RouteMqError {
  readonly code = 'TRANSPORT_CLOSED'

  constructor(operation: string) {
    super(`Cannot ${operation}: the MQTT transport is closed. Publish before the application stops.`)
  }
}

export function isTransportClosedError(error: unknown): error is TransportClosedError {
  return error instanceof TransportClosedError
}
