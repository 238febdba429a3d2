import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A QoS 0 publish was dropped because no broker was connected and the pool is
 * set to drop QoS 0 messages while offline (`offlineBuffer.qos0: 'drop'`).
 *
 * @example
 * pool.publish('status', 'up').catch((e) => { if (isPublishDroppedError(e)) metrics.dropped++ })
 */
export class PublishDroppedError extends RouteMqError {
  readonly code = 'PUBLISH_DROPPED'

  constructor(topic: string) {
    super(
      `QoS 0 publish to "${topic}" dropped: no broker is connected. Use QoS 1, or offlineBuffer.qos0 = 'queue' to buffer QoS 0 messages too.`,
    )
  }
}

export function isPublishDroppedError(error: unknown): error is PublishDroppedError {
  return error instanceof PublishDroppedError
}
