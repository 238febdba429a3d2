import type { QueryResult } from 'kysely'
import type { PgResult } from './pg-backend.js'

const COUNTED = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE'])

/**
 * A pg result as Kysely's `PostgresDialect` returns it (kysely 0.28): rows,
 * the affected-row count for inserts, updates, deletes and merges, and the
 * command tag alone for COMMIT and ROLLBACK. Routed queries skip Kysely's
 * per-query connection object, so they must shape results the same way.
 *
 * @example
 * toQueryResult({ command: 'UPDATE', rowCount: 2, rows: [] }) // { numAffectedRows: 2n, rows: [] }
 */
export function toQueryResult<R>(result: PgResult): QueryResult<R> {
  const { command, rowCount, rows } = result
  if (command === 'ROLLBACK' || command === 'COMMIT') return { rows: [{ command }] as R[] }
  return {
    numAffectedRows: COUNTED.has(command) ? BigInt(rowCount as number) : undefined,
    rows: (rows ?? []) as R[],
  }
}
