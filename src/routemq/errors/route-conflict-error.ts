import { RouteMqError } from './route-mq-error.js'

/**
 * Two routes subscribe to the same topic filter, so a message could only ever
 * reach one of them.
 *
 * @example
 * router.on('devices/{id}', a)
 * router.on('devices/+', b) // throws: both subscribe to "devices/+"
 */
export class RouteConflictError extends RouteMqError {
  readonly code = 'ROUTE_CONFLICT'

  constructor(
    readonly topic: string,
    readonly existing: string,
    readonly subscription: string,
  ) {
    super(
      `Route "${topic}" subscribes to "${subscription}", which route "${existing}" already does. ` +
        'Merge the two handlers into one route, or make one pattern more specific.',
    )
  }
}

export function isRouteConflictError(error: unknown): error is RouteConflictError {
  return error instanceof RouteConflictError
}
