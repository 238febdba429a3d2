const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
// SQLSTATE 57P01-03: the server is shutting down, crashed, or not accepting connections yet.
const SQL_STATES = new Set(['57P01', '57P02', '57P03'])

/**
 * True when `error` means the server or the connection is gone, rather than
 * the query being wrong: the kind of failure worth retrying elsewhere.
 *
 * @example
 * if (isConnectionError(error)) retryOnAnotherReplica()
 */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (NODE_CODES.has(code) || SQL_STATES.has(code) || code.startsWith('08'))) return true
  return /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|Connection ended unexpectedly/i.test(error.message)
}

/**
 * True when `error` is this process's own pool running out of connections
 * (pg's "timeout exceeded when trying to connect"): the server may be fine,
 * only busy or slow, so it is not taken for dead.
 *
 * @example
 * if (isPoolWaitTimeout(error)) tryAnotherReplica()
 */
export function isPoolWaitTimeout(error: unknown): boolean {
  return error instanceof Error && /timeout exceeded when trying to connect/i.test(error.message)
}

/** SQLSTATE 25006: a write reached a read-only server, which refused it; nothing ran. */
export function isReadOnlyRefusal(error: unknown): boolean {
  return (error as { code?: unknown })?.code === '25006'
}
