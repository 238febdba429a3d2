import pg from 'pg'

/**
 * The one-connection pool `migrateToLatest` runs the migrations on.
 *
 * @example
 * const pool = createMigrationPool('postgres://app@db-1:5432/app')
 */
export function createMigrationPool(connectionString: string): pg.Pool {
  return new pg.Pool({ connectionString, max: 1 })
}
