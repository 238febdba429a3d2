import { scrubSecrets } from '../../src/health/scrub-secrets.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { connectionFailureFix } from './connection-errors.js'
import { MigrationFailedError, type MigrationTarget } from './errors/migration-failed-error.js'
import { primaryTrackerOf, type ReplicaPool } from './replica-pool.js'
import type { ResolvedReplicaPoolOptions } from './replica-pool-options.js'
import { migrateToLatest } from './run-migrations.js'

/**
 * Runs the package's migrations on the server `pool` found to be the
 * primary (which need not be the first candidate). When there is none, or
 * the primary refuses them, fails with `MigrationFailedError` naming each
 * server with its cause and fix; `setting` says where migrating was turned
 * on (`database.migrate`, or `ROUTEMQ_DATABASE_MIGRATE`).
 *
 * @example
 * for (const line of await migrateOnStart(pool, resolveReplicaPoolOptions(options), 'database.migrate', logger)) logger.info('migration', { result: line })
 */
export async function migrateOnStart(pool: ReplicaPool, options: ResolvedReplicaPoolOptions, setting: string, logger: Logger): Promise<readonly string[]> {
  const tracker = primaryTrackerOf(pool)
  const primaryId = pool.stats.primary.id
  const primary = options.primaries.find((server) => server.id === primaryId)
  if (!primary || !tracker.current) {
    const problems = tracker.problems
    const errors = problems.map((problem) => problem.error).filter((error) => error instanceof Error)
    const cause = errors.length > 1 ? new AggregateError(errors, 'every candidate primary failed') : errors[0]
    throw new MigrationFailedError('no primary is reachable', problems.map((problem) => targetOf(problem.server, problem.error)), setting, cause)
  }
  try {
    return await migrateToLatest(primary.connectionString, { logger })
  } catch (error) {
    throw new MigrationFailedError('the primary did not take them', [targetOf(tracker.current.label, error)], setting, error)
  }
}

function targetOf(server: string, error: unknown): MigrationTarget {
  const message = error instanceof Error ? error.message || (error as { code?: string }).code || error.name : String(error)
  return { server, reason: scrubSecrets(message), fix: connectionFailureFix(error) }
}
