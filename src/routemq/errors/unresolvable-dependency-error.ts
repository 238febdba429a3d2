import { RouteMqError } from './route-mq-error.js'

/**
 * The container cannot build a class a route needs: it is not marked
 * injectable (a forgotten `@Repository()` or `@injectable()`), a constructor
 * parameter has no type it can resolve (an interface, a primitive, or
 * `emitDecoratorMetadata` off), or a token nothing registers. `start()`
 * fails with it for what it can see (controllers of routes, repositories);
 * a handler meeting it for a message is a fault of the deployed code, not of
 * the message, so that message is never acknowledged under `onError: 'ack'`
 * (dead-lettered under a dead-letter policy) and comes again after a fix.
 *
 * @example
 * await app.start() // UnresolvableDependencyError: Cannot build "Readings": it is not marked injectable. Add @Repository() ...
 */
export class UnresolvableDependencyError extends RouteMqError {
  readonly code = 'UNRESOLVABLE_DEPENDENCY'

  constructor(
    /** The class or token that cannot be built, with what needs it: `Readings`, `DeviceController → Readings`. */
    readonly target: string,
    /** What is wrong with it. */
    readonly problem: string,
    /** What to change. */
    readonly fix: string,
    /** Where it was needed (`route "devices/{id}/telemetry"`), when known. */
    readonly neededBy?: string,
    cause?: unknown,
  ) {
    super(`Cannot build "${target}"${neededBy ? ` for ${neededBy}` : ''}: ${problem}. ${fix}`, cause === undefined ? undefined : { cause })
  }
}

export function isUnresolvableDependencyError(error: unknown): error is UnresolvableDependencyError {
  return error instanceof UnresolvableDependencyError
}
