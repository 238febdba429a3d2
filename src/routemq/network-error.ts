const TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'])
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH'])

function codeOf(error: unknown): unknown {
  return (error as { code?: unknown } | null | undefined)?.code
}

/**
 * A failure of the network path that may heal by trying again (refused,
 * reset, timed out, unreachable, a name not resolving yet), as opposed to a
 * refused login or a bad certificate, which will not.
 *
 * @example
 * client.on('error', (e) => { if (!isTransientNetworkError(e)) giveUp(e) })
 */
export function isTransientNetworkError(error: unknown): boolean {
  const code = codeOf(error)
  return typeof code === 'string' && TRANSIENT.has(code)
}

/**
 * Nothing listens there or no route leads there: the server is certainly not
 * serving (unlike a timeout, which a slow link also gives).
 *
 * @example
 * if (isUnreachableError(error)) set.markDown(backend)
 */
export function isUnreachableError(error: unknown): boolean {
  const code = codeOf(error)
  return typeof code === 'string' && UNREACHABLE.has(code)
}
