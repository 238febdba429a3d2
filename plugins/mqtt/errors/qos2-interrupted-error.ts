import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A QoS 2 publish was in flight when its broker connection was lost. The
 * exactly-once exchange belongs to that broker's session and cannot be
 * finished on another broker, so the pool does not resend it: it may or may
 * not have been delivered.
 *
 * @example
 * await pool.publish('billing', invoice, { qos: 2 }).catch((e) => { if (isQos2InterruptedError(e)) reconcile(invoice) })
 */
export class Qos2InterruptedError extends RouteMqError {
  readonly code = 'QOS2_INTERRUPTED'

  constructor(topic: string, broker: string) {
    super(
      `QoS 2 publish to "${topic}" was interrupted when the connection to ${broker} was lost; it may or may not have been delivered. ` +
        'QoS 2 is not carried across brokers: check for it downstream, or use QoS 1 with an idempotent consumer.',
    )
  }
}

export function isQos2InterruptedError(error: unknown): error is Qos2InterruptedError {
  return error instanceof Qos2InterruptedError
}
