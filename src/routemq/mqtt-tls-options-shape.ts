import type { MqttTlsOptions } from './default-mqtt-transport.js'
import { InvalidOptionError } from './errors/invalid-option-error.js'
import { byKind, isBoolean, listOf, type OptionShape } from './option-shape.js'

const PEM = 'must be PEM text or a Buffer, such as readFileSync("ca.pem")'

const pem = byKind(PEM, {
  string: true,
  object: (value, field) => {
    if (!(value instanceof Uint8Array)) throw new InvalidOptionError(field, PEM)
  },
})

/** The keys and types of `MqttTlsOptions`, for a broker pool's brokers and the default transport alike. */
export const MQTT_TLS_OPTIONS_SHAPE: OptionShape<MqttTlsOptions> = {
  ca: byKind(`${PEM}, or a list of them`, { string: pem, object: pem, array: listOf(pem) }),
  cert: pem,
  key: pem,
  rejectUnauthorized: isBoolean,
}
