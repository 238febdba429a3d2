import { sql, type Kysely } from 'kysely'

// The row the replica pool rewrites on the primary every probe interval;
// replicas replaying it show how far behind they are in time.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('routemq_replication_heartbeat')
    .ifNotExists()
    .addColumn('id', 'integer', (column) => column.primaryKey())
    .addColumn('beat_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
    .execute()
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('routemq_replication_heartbeat').ifExists().execute()
}
