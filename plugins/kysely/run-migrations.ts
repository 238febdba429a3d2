import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { Kysely, Migrator, PostgresDialect } from 'kysely'
import { migrations } from '../../migrations/index.js'
import { ConsoleLogger, safeLogger, silentLogger, type Logger } from '../../src/routemq/plugin-api.js'
import { redactUrl } from '../../src/routemq/plugin-api.js'
import { createMigrationPool } from './migration-pool.js'

/** Options of `migrateToLatest`. */
export interface MigrateOptions {
  /** Where a connection the server ends is reported (without credentials). Default: nowhere. */
  readonly logger?: Logger
}

/**
 * Brings a database up to date with this package's migrations (the
 * replication heartbeat table). Run it against the primary.
 *
 * @example
 * const results = await migrateToLatest('postgres://app@db-1:5432/app', { logger })
 */
export async function migrateToLatest(connectionString: string, options: MigrateOptions = {}): Promise<readonly string[]> {
  const pool = createMigrationPool(connectionString, safeLogger(options.logger ?? silentLogger))
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool }) })
  try {
    const { error, results } = await new Migrator({ db, provider: { getMigrations: async () => ({ ...migrations }) } }).migrateToLatest()
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the migration's own error, as Kysely's Migrator reports it
    if (error) throw error
    return (results ?? []).map((result) => `${result.migrationName}: ${result.status}`)
  } finally {
    await db.destroy()
  }
}

// `npm run migrate -- <url>` or DATABASE_URL=... npm run migrate
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const url = process.argv[2] ?? process.env.DATABASE_URL
  if (!url) {
    console.error('Give the primary\'s URL: npm run migrate -- postgres://user@host:5432/db (or set DATABASE_URL).')
    process.exitCode = 2
  } else {
    migrateToLatest(url, { logger: new ConsoleLogger({ level: 'warn' }) }).then(
      (results) => {
        console.log(results.length > 0 ? results.join('\n') : `${redactUrl(url)} is up to date`)
      },
      (error: unknown) => {
        console.error(`Migrating ${redactUrl(url)} failed: ${error instanceof Error ? error.message : String(error)}`)
        process.exitCode = 1
      },
    )
  }
}
