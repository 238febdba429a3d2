import { InvalidOptionError } from './errors/invalid-option-error.js'
import type { MessageProperties, PublishOptions } from './mqtt-transport.js'
import { byKind, checkOptions, isBoolean, listOf, mqttString, nonEmptyString, oneOf, recordOf, shapeOf, wholeNumber, type OptionCheck, type OptionShape } from './option-shape.js'
import { assertPublishTopic, publishTopicProblem } from './publish-topic.js'

/** Every string of an outgoing PUBLISH is an MQTT UTF-8 string: a broker drops the connection over a bad one. */
const text = mqttString({ nonEmpty: false })

const userPropertyValues = recordOf(byKind('must be a string or a list of strings', { string: text, array: listOf(text) }))

const responseTopic: OptionCheck = (value, field) => {
  if (value === undefined) return
  const problem = publishTopicProblem(value)
  if (problem) throw new InvalidOptionError(field, problem)
}

const PUBLISH_PROPERTIES_SHAPE: OptionShape<Omit<MessageProperties, 'subscriptionIdentifier'>> = {
  userProperties: (value, field) => {
    userPropertyValues(value, field)
    // The names are MQTT strings too.
    for (const name of Object.keys((value as object | undefined) ?? {})) text(name, `${field}.${name}`)
  },
  contentType: text,
  responseTopic,
  correlationData: (value, field) => {
    if (value !== undefined && !Buffer.isBuffer(value)) throw new InvalidOptionError(field, 'must be a Buffer')
  },
  payloadFormatIndicator: isBoolean,
  messageExpiryInterval: wholeNumber(0, 4_294_967_295),
}

const PUBLISH_OPTIONS_SHAPE: OptionShape<PublishOptions> = {
  qos: oneOf([0, 1, 2]),
  retain: isBoolean,
  properties: shapeOf(PUBLISH_PROPERTIES_SHAPE),
  via: nonEmptyString,
}

/**
 * Refuses what a publish cannot send, before a broker sees it: a topic no
 * broker accepts (`InvalidTopicError`), a payload that is neither a string
 * nor bytes, and options with an unknown key, a wrong type or a property MQTT
 * forbids (a NUL in a user property makes the broker drop the connection, and
 * the client would resend it on every reconnect): `InvalidOptionError`
 * naming the field, as `publish.qos`. The one check of both transports.
 *
 * @example
 * assertPublishable('devices/7/cmd', 'x', { qos: 1, properties: { userProperties: { fw: '1.0' } } })
 */
export function assertPublishable(topic: unknown, payload: unknown, options: unknown): void {
  assertPublishTopic(topic as string)
  if (typeof payload !== 'string' && !(payload instanceof Uint8Array)) {
    throw new InvalidOptionError('publish.payload', 'must be a string or bytes (Buffer, Uint8Array); ctx.publish also takes an object and sends it as JSON')
  }
  if (options !== undefined) checkOptions(options, PUBLISH_OPTIONS_SHAPE, 'publish')
}
