import { RouteMqError } from './route-mq-error.js'

/**
 * The broker refused a subscription (SUBACK failure code): the client may not
 * read that topic, or the broker does not support shared subscriptions.
 *
 * @example
 * await app.start() // SubscriptionRejectedError: broker mqtt://b:1883 refused "$share/g/devices/+"
 */
export class SubscriptionRejectedError extends RouteMqError {
  readonly code = 'SUBSCRIPTION_REJECTED'

  constructor(
    readonly broker: string,
    readonly topic: string,
  ) {
    super(
      `Broker ${broker} refused the subscription "${topic}". Check the broker's ACL for this client, ` +
        'and that it supports shared subscriptions if the topic starts with $share.',
    )
  }
}

export function isSubscriptionRejectedError(error: unknown): error is SubscriptionRejectedError {
  return error instanceof SubscriptionRejectedError
}
