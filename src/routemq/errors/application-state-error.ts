import { RouteMqError } from './route-mq-error.js'

/**
 * An `Application` was asked to do something its lifecycle state forbids,
 * such as starting again after `stop()`.
 *
 * @example
 * await app.stop()
 * await app.start() // throws: create a new Application instead
 */
export class ApplicationStateError extends RouteMqError {
  readonly code = 'APPLICATION_STATE'
}

export function isApplicationStateError(error: unknown): error is ApplicationStateError {
  return error instanceof ApplicationStateError
}
