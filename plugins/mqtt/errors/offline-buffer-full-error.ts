import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A publish could not be buffered while no broker took it: the buffer of
 * unacknowledged publishes is at its message or byte limit. The publish was
 * not sent; nothing already buffered was dropped to make room.
 *
 * @example
 * await pool.publish('t', big).catch((e) => { if (isOfflineBufferFullError(e)) retryLater() })
 */
export class OfflineBufferFullError extends RouteMqError {
  readonly code = 'OFFLINE_BUFFER_FULL'

  constructor(limit: string) {
    super(
      `The publish buffer is full (${limit}) while brokers are unreachable or slow to acknowledge; this publish was not sent. ` +
        'Raise offlineBuffer.maxMessages / maxBytes, or slow the publisher down until a broker is back.',
    )
  }
}

export function isOfflineBufferFullError(error: unknown): error is OfflineBufferFullError {
  return error instanceof OfflineBufferFullError
}
