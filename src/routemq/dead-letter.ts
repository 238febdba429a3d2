import { isInvalidTopicError } from './errors/invalid-topic-error.js'
import { editDistance } from './known-options.js'
import type { PublishOptions } from './mqtt-transport.js'
import { publishTopicProblem } from './publish-topic.js'

/** The MQTT 5 user property that carries a dead letter's original topic when it could not be part of the topic. */
export const ORIGINAL_TOPIC_PROPERTY = 'routemq-original-topic'

/** Where a failed message is republished, and how. */
export interface DeadLetter {
  readonly topic: string
  readonly options: PublishOptions
}

/**
 * The dead letter of a message on `topic` under `prefix`: `prefix/topic`, or,
 * when that is no topic a broker accepts (longer than 65 535 bytes), `prefix`
 * itself (which `prefix/#` subscribers receive too) with the original topic
 * in the `routemq-original-topic` user property.
 *
 * @example
 * deadLetterFor('dl', 'devices/7').topic // 'dl/devices/7'
 */
export function deadLetterFor(prefix: string, topic: string): DeadLetter {
  const nested = `${prefix}/${topic}`
  if (publishTopicProblem(nested) === undefined) return { topic: nested, options: { qos: 1 } }
  return { topic: prefix, options: { qos: 1, properties: { userProperties: { [ORIGINAL_TOPIC_PROPERTY]: topic } } } }
}

/**
 * True when publishing failed in a way no retry mends: the topic was refused
 * before sending, or the broker answered with an MQTT 5 failure reason code
 * (0x80 and above: not authorized, topic name invalid, packet too large,
 * quota exceeded, ...). A lost connection, a closed transport or a full
 * buffer are not permanent.
 */
export function isPermanentPublishFailure(error: unknown): boolean {
  if (isInvalidTopicError(error)) return true
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'number' && code >= 0x80
}

/**
 * Why `policy` is no error policy, or `undefined` when it is one: `'ack'`,
 * `'redeliver'`, or `{ deadLetter }` whose prefix is a topic one can publish to.
 */
export function errorPolicyProblem(policy: unknown): string | undefined {
  if (policy === 'ack' || policy === 'redeliver') return undefined
  const expected = "must be 'ack', 'redeliver' or { deadLetter: 'topic/prefix' }"
  if (typeof policy !== 'object' || policy === null) return expected
  const stray = Object.keys(policy).find((key) => key !== 'deadLetter')
  if (stray !== undefined) {
    const near = editDistance(stray.toLowerCase(), 'deadletter') <= Math.max(2, Math.floor(stray.length / 3))
    return `has no option ${JSON.stringify(stray.slice(0, 100))}${near ? '; did you mean deadLetter?' : ''} It ${expected}`
  }
  const prefix = (policy as { deadLetter?: unknown }).deadLetter
  if (typeof prefix !== 'string') return expected
  const problem = publishTopicProblem(prefix)
  return problem ? `deadLetter: ${problem}` : undefined
}
