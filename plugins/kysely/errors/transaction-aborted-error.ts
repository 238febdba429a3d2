import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A statement inside the transaction failed (and the error was caught), so
 * PostgreSQL rolled the whole transaction back at COMMIT. Nothing in it was
 * saved.
 *
 * @example
 * await db.transaction().execute(async (trx) => { await trx.insertInto('t').values(row).execute().catch(() => {}) })
 * // rejects with TransactionAbortedError when that insert failed
 */
const KYSELY_ABORTED = Symbol.for('kysely.AbortedTransactionError')

export class TransactionAbortedError extends RouteMqError {
  readonly code = 'TRANSACTION_ABORTED'

  constructor() {
    super(
      'The transaction was rolled back at COMMIT because a statement in it failed; nothing in it was saved. ' +
        'Do not swallow errors inside a transaction, or use a savepoint (trx.savepoint()) around the statement that may fail.',
    )
    // Kysely's mark of an aborted transaction: with it, a controlled transaction is marked rolled back and gives its connection back.
    Object.defineProperty(this, KYSELY_ABORTED, { value: true })
  }
}

export function isTransactionAbortedError(error: unknown): error is TransactionAbortedError {
  return error instanceof TransactionAbortedError
}
