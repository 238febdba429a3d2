import type { RootOperationNode } from 'kysely'

/** What a query does, for routing. */
export type QueryKind = 'read' | 'write' | 'raw'

const WRITES = new Set(['InsertQueryNode', 'UpdateQueryNode', 'DeleteQueryNode', 'MergeQueryNode'])
const LOCKS = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare'])

/**
 * Classifies a compiled query: plain selects are reads; inserts, updates,
 * deletes, merges, DDL and selects that lock rows or write in a CTE are
 * writes; raw SQL cannot be read, so it is `raw` and goes where the scope says
 * (the primary by default).
 *
 * @example
 * queryKind(db.selectFrom('t').selectAll().compile().query) // 'read'
 */
export function queryKind(node: RootOperationNode): QueryKind {
  if (node.kind === 'RawNode') return 'raw'
  if (node.kind !== 'SelectQueryNode') return 'write'
  for (const modifier of node.endModifiers ?? []) {
    if (modifier.modifier !== undefined && LOCKS.has(modifier.modifier)) return 'write'
  }
  for (const cte of node.with?.expressions ?? []) {
    if (WRITES.has(cte.expression.kind)) return 'write'
  }
  return 'read'
}
