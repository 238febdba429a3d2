import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * A query got no answer within `queryTimeoutMs`; its connection was closed
 * (a server that stopped answering must not keep a pool slot forever).
 *
 * @example
 * await db.selectFrom('big').selectAll().execute() // QueryTimeoutError after queryTimeoutMs
 */
export class QueryTimeoutError extends RouteMqError {
  readonly code = 'QUERY_TIMEOUT'

  constructor(
    readonly backend: string,
    timeoutMs: number,
  ) {
    super(
      `No answer from ${backend} within ${timeoutMs} ms; the connection was closed. ` +
        'If the query is legitimately slow, raise queryTimeoutMs (0 turns the limit off); otherwise check the server and the network.',
    )
  }
}

export function isQueryTimeoutError(error: unknown): error is QueryTimeoutError {
  return error instanceof QueryTimeoutError
}
