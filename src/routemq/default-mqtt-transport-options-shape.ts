import type { DefaultMqttTransportOptions } from './default-mqtt-transport.js'
import { MQTT_TLS_OPTIONS_SHAPE } from './mqtt-tls-options-shape.js'
import { isBoolean, isLogger, milliseconds, mqttBinaryString, mqttString, nonEmptyString, oneOf, required, shapeOf, wholeNumber, type OptionShape } from './option-shape.js'

/** The keys and types of `DefaultMqttTransportOptions`; the URL and what depends on several options are checked by the transport. */
export const DEFAULT_MQTT_TRANSPORT_OPTIONS_SHAPE: OptionShape<DefaultMqttTransportOptions> = {
  url: required(nonEmptyString, 'must be a URL such as mqtt://broker:1883'),
  clientId: mqttString({ nonEmpty: true }),
  username: mqttString({ nonEmpty: false }),
  password: mqttBinaryString,
  clean: isBoolean,
  sessionExpirySeconds: wholeNumber(0, 4_294_967_295),
  protocolVersion: oneOf([4, 5], '4 (MQTT 3.1.1) or 5'),
  keepaliveSeconds: wholeNumber(0, 65_535),
  connectTimeoutMs: milliseconds(1),
  reconnectPeriodMs: milliseconds(1),
  tls: shapeOf(MQTT_TLS_OPTIONS_SHAPE),
  ackOrder: oneOf(['arrival', 'completion']),
  receiveMaximum: wholeNumber(1, 65_535),
  closeTimeoutMs: milliseconds(0),
  logger: isLogger,
}
