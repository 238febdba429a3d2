import { quoted } from '../mqtt-text.js'
import { RouteMqError } from './route-mq-error.js'

/**
 * A publish named a topic no broker accepts: empty, with a wildcard, with a
 * character MQTT forbids (NUL, a control character, a Unicode non-character,
 * an unpaired surrogate), or longer than 65 535 bytes. Rejected before it is sent, so
 * that a broker does not drop the connection over it.
 *
 * @example
 * await ctx.publish('devices/+/cmd', 'x') // rejects: InvalidTopicError
 */
export class InvalidTopicError extends RouteMqError {
  readonly code = 'INVALID_TOPIC'

  constructor(
    readonly topic: string,
    reason: string,
  ) {
    // JSON quoting: a topic with a newline or control character must not forge log lines.
    super(`Cannot publish to ${quoted(topic.slice(0, 200))}: ${reason}. Publish to a concrete topic such as "devices/7/cmd".`)
  }
}

export function isInvalidTopicError(error: unknown): error is InvalidTopicError {
  return error instanceof InvalidTopicError
}
