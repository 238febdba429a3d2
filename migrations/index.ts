import type { Migration } from 'kysely'
import * as replicationHeartbeat from './2026-11-25-001-replication-heartbeat.js'

/**
 * This package's migrations, by name in the order they run. Listed here
 * rather than read from the folder, so that they work from a bundle too.
 *
 * @example
 * new Migrator({ db, provider: { getMigrations: async () => migrations } })
 */
export const migrations: Readonly<Record<string, Migration>> = Object.freeze({
  '2026-11-25-001-replication-heartbeat': replicationHeartbeat,
})
