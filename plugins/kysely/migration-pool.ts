import pg from 'pg'
import { scrubSecrets } from '../../src/health/scrub-secrets.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { redactUrl } from '../../src/routemq/plugin-api.js'

/**
 * The one-connection pool `migrateToLatest` runs the migrations on. A
 * connection the server ends (a failover, `pg_terminate_backend`, an idle
 * timeout) is logged, without credentials, and never ends the process.
 *
 * @example
 * const pool = createMigrationPool('postgres://app@db-1:5432/app', logger)
 */
export function createMigrationPool(connectionString: string, logger: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 1 })
  // pg emits 'error' on the pool when an idle connection fails; unheard, that ends the process.
  pool.on('error', (error) => {
    logger.warn('a database connection of the migrations ended; the next migration query connects afresh', {
      server: redactUrl(connectionString),
      error: scrubSecrets(error instanceof Error ? error.message : String(error)),
    })
  })
  // A checked-out connection's failure is emitted on its client, which the pool listens to only while it is idle;
  // the migration's next query on it fails and migrateToLatest rejects, so it is reported there, not here.
  pool.on('connect', (client) => client.on('error', ignore))
  return pool
}

function ignore(): void {}
