import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A write was attempted inside a `@ReadOnly()` method (or `readOnly()` call).
 * It was refused before reaching any database, or, for raw SQL that only the
 * server could tell was a write, by the server's read-only session (then
 * `cause` holds the server's error).
 *
 * @example
 * class Devices {
 *   @ReadOnly() async find(id: string) { await db.insertInto('audit').values({ id }).execute() } // throws
 * }
 */
export class WriteInReadOnlyScopeError extends RouteMqError {
  readonly code = 'WRITE_IN_READ_ONLY_SCOPE'

  constructor(what: string, cause?: unknown) {
    super(
      `${what} inside a read-only scope was refused. Move the write into a @Write() method, or out of the @ReadOnly() one.`,
      cause === undefined ? undefined : { cause },
    )
  }
}

export function isWriteInReadOnlyScopeError(error: unknown): error is WriteInReadOnlyScopeError {
  return error instanceof WriteInReadOnlyScopeError
}
