/**
 * Base class of every error this package throws. Each subclass has a stable
 * `code` to branch on and a message that says what went wrong and how to fix it.
 *
 * @example
 * try { router.on('a/{id}/{id}', handle) } catch (e) {
 *   if (e instanceof RouteMqError) console.error(e.code, e.message)
 * }
 */
export abstract class RouteMqError extends Error {
  abstract readonly code: string

  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** True when `error` is any error raised by this package. */
export function isRouteMqError(error: unknown): error is RouteMqError {
  return error instanceof RouteMqError
}
