import { AsyncLocalStorage } from 'node:async_hooks'
import { WriteInReadOnlyScopeError } from './errors/write-in-read-only-scope-error.js'

/** Where the queries of a scope go. */
export type ScopeMode = 'read-only' | 'write'

/** The routing scope in force for the code running now. */
export interface DatabaseScope {
  readonly mode: ScopeMode
}

const storage = new AsyncLocalStorage<DatabaseScope>()

/** The scope in force, if any. */
export function currentScope(): DatabaseScope | undefined {
  return storage.getStore()
}

/**
 * Runs `fn` with every query going to a replica; a write is refused with
 * `WriteInReadOnlyScopeError` before it reaches a database. Inside a write
 * scope, it stays on the primary (the outer write wins, so a method that
 * writes and then reads sees its own writes).
 *
 * @example
 * const device = await readOnly(() => db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst())
 */
export function readOnly<T>(fn: () => T): T {
  if (storage.getStore()?.mode === 'write') return fn()
  return storage.run(READ_ONLY, fn)
}

/**
 * Runs `fn` with every query going to the primary. Refused inside a
 * read-only scope: a read-only method must not cause writes.
 *
 * @example
 * await write(() => db.insertInto('readings').values(reading).execute())
 */
export function write<T>(fn: () => T): T {
  if (storage.getStore()?.mode === 'read-only') throw new WriteInReadOnlyScopeError('Entering a write scope')
  return storage.run(WRITE, fn)
}

const READ_ONLY: DatabaseScope = Object.freeze({ mode: 'read-only' })
const WRITE: DatabaseScope = Object.freeze({ mode: 'write' })
