/**
 * Dependency-injection tokens of the kernel. Resolve them from the
 * application's container (or, inside a handler, from `ctx.container`).
 *
 * @example
 * const transport = app.container.resolve<MqttTransport>(MQTT_TRANSPORT)
 */
export const MQTT_TRANSPORT = Symbol.for('routemq.MqttTransport')
/** The running `Application`. */
export const APPLICATION = Symbol.for('routemq.Application')
/** The application's `Router`. */
export const ROUTER = Symbol.for('routemq.Router')
/** The application's `Logger`. */
export const LOGGER = Symbol.for('routemq.Logger')
/** The `MessageContext` being handled; registered in each message's child container. */
export const MESSAGE_CONTEXT = Symbol.for('routemq.MessageContext')
