import { quoted } from '../mqtt-text.js'
import { RouteMqError } from './route-mq-error.js'

/**
 * A route's topic pattern or options cannot be subscribed to or matched.
 *
 * @example
 * router.on('devices/#/status', handle) // throws: '#' must be the last level
 */
export class InvalidRouteError extends RouteMqError {
  readonly code = 'INVALID_ROUTE'

  constructor(
    readonly topic: string,
    reason: string,
  ) {
    super(`Route ${quoted(topic.slice(0, 200))} is invalid: ${reason}`)
  }
}

export function isInvalidRouteError(error: unknown): error is InvalidRouteError {
  return error instanceof InvalidRouteError
}
