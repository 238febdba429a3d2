const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
// SQLSTATE 57P01-03: the session was terminated, the server crashed, or it does not accept connections yet.
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
  return /Connection terminated|connect ECONNREFUSED|Client has encountered a connection error|Connection ended unexpectedly|Client was closed and is not queryable/i.test(
    error.message,
  )
}

/**
 * True for a connection error that says nothing of the server as a whole:
 * one session terminated by an administrator (57P01, `pg_terminate_backend`),
 * or a server with no connection slot left (53300). Worth another server,
 * not worth ejecting this one; if the server is going down, its probes say so.
 *
 * @example
 * if (isSessionOnlyError(error)) retryElsewhereWithoutEjecting()
 */
export function isSessionOnlyError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return code === '57P01' || code === '53300'
}

/**
 * SQLSTATE 40001 and 40P01 on a replica: a read cancelled because replay
 * needed what it was reading (a conflict with recovery), or a deadlock. The
 * read did nothing; it can run again elsewhere.
 *
 * @example
 * if (isRetryableReadFailure(error)) tryAnotherReplica()
 */
export function isRetryableReadFailure(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code
  return code === '40001' || code === '40P01' || code === '53300'
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

/**
 * How to fix a failed connection or statement, for the common causes: a
 * refused connection, a host name that does not resolve, no answer, a
 * refused login, a missing database, a server starting up, a missing grant,
 * TLS. `undefined` when the error says nothing this can add to.
 *
 * @example
 * connectionFailureFix(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }))
 * // 'nothing listens there: start PostgreSQL, or fix the host and port in the URL'
 */
export function connectionFailureFix(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code
  const message = error instanceof Error ? error.message : String(error)
  if (code === 'ECONNREFUSED') return 'nothing listens there: start PostgreSQL, or fix the host and port in the URL'
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'the host name does not resolve (DNS): fix the host in the URL'
  if (code === '28P01' || code === '28000') return 'the server refused the login: check the user name and password in the URL (the password is not shown here)'
  if (code === '3D000') return 'that database does not exist on the server: create it, or fix the name at the end of the URL'
  if (code === '57P03') return 'the server is starting or stopping: start the application again once it accepts connections'
  if (code === '42501') return 'the user may not create the tables: grant it CREATE on the schema, or run the migrations as the owner'
  if (code === '53300') return 'the server has no connection slot left: raise max_connections or lower database.poolSize'
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || /timeout|no answer within/i.test(message)) {
    return 'no answer in time: check the host, the port and any firewall between, or whether the server is overloaded'
  }
  if (/\b(SSL|TLS|certificate)\b/i.test(message)) return 'the TLS handshake failed: check sslmode and the certificates'
  return undefined
}
