import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A publish was in flight each time a broker connection was lost, several
 * times in a row, so the pool stopped resending it: a broker is most likely
 * refusing this very message (access rules, size limit) by dropping the
 * connection, and resending it would take every broker down in turn.
 *
 * @example
 * await pool.publish(topic, body, { qos: 1 }).catch((e) => { if (isPublishAbandonedError(e)) deadLetter(topic, body) })
 */
export class PublishAbandonedError extends RouteMqError {
  readonly code = 'PUBLISH_ABANDONED'

  constructor(
    readonly topic: string,
    losses: number,
  ) {
    super(
      `Stopped resending the publish to "${topic.slice(0, 200)}": ${losses} broker connections were lost while it was in flight. ` +
        "Check the brokers' logs for why they drop it (access rules, maximum packet size) before publishing it again.",
    )
  }
}

export function isPublishAbandonedError(error: unknown): error is PublishAbandonedError {
  return error instanceof PublishAbandonedError
}
