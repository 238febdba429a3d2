import { InvalidTopicError } from './errors/invalid-topic-error.js'
import { mqttTextProblem } from './mqtt-text.js'

const MAX_TOPIC_BYTES = 65_535

/**
 * The reason `topic` cannot be published to, or `undefined` when it can.
 *
 * @example
 * publishTopicProblem('a/+/b') // 'a topic to publish to cannot contain + or #'
 */
export function publishTopicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'the topic is empty'
  if (topic.includes('+') || topic.includes('#')) return 'a topic to publish to cannot contain + or #'
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) return `a topic is at most ${MAX_TOPIC_BYTES} bytes`
  return mqttTextProblem(topic)
}

/** Throws `InvalidTopicError` when `topic` cannot be published to. */
export function assertPublishTopic(topic: string): void {
  const problem = publishTopicProblem(topic)
  if (problem) throw new InvalidTopicError(String(topic), problem)
}
