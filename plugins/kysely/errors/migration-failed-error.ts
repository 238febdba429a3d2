import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/** One server the migrations were meant for, and what it answered (no credentials in either). */
export interface MigrationTarget {
  /** `host:port/database`. */
  readonly server: string
  /** What went wrong there, credentials scrubbed. */
  readonly reason: string
  /** How to fix that, when the cause is one of the common ones (refused, DNS, timeout, login, missing database). */
  readonly fix: string | undefined
}

/**
 * The package's migrations could not run at start (`database.migrate`): no
 * candidate primary was reachable, or the primary refused them. The message
 * names each server tried (`host:port/database`, never a password), what it
 * answered (ECONNREFUSED, a failed login, a host name that does not resolve,
 * a timeout) and how to fix it; `cause` is the underlying error. Nothing
 * was started.
 *
 * @example
 * await app.start() // MigrationFailedError: Could not run the migrations (database.migrate): no primary is reachable. db-1:5432/app: connect ECONNREFUSED 127.0.0.1:5432 — nothing listens there; ...
 */
export class MigrationFailedError extends RouteMqError {
  readonly code = 'MIGRATION_FAILED'

  constructor(
    /** Why, in a few words: `no primary is reachable`, `the primary refused them`. */
    readonly summary: string,
    readonly targets: readonly MigrationTarget[],
    /** Where `migrate` was turned on, for the last advice: `database.migrate` or `ROUTEMQ_DATABASE_MIGRATE`. */
    setting: string,
    cause?: unknown,
  ) {
    const each = targets.map((target) => `${target.server}: ${target.reason}${target.fix ? ` — ${target.fix}` : ''}`).join('; ')
    super(
      `Could not run the migrations (${setting}): ${summary}. ${each || 'no server answered'}. ` +
        `Fix the server or its URL, or turn ${setting} off and run them later with migrateToLatest(url).`,
      cause === undefined ? undefined : { cause },
    )
  }
}

export function isMigrationFailedError(error: unknown): error is MigrationFailedError {
  return error instanceof MigrationFailedError
}
