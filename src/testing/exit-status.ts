/**
 * How a child ended: an exit code, a signal, or a failure to start at all.
 *
 * @example
 * const status: ExitStatus = { code: null, signal: 'SIGKILL', error: undefined }
 */
export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly error: Error | undefined
}

/**
 * Says in words how a child ended, for error messages.
 *
 * @example
 * describeExit({ code: 1, signal: null, error: undefined }) // 'exited with code 1'
 */
export function describeExit(status: ExitStatus): string {
  if (status.error !== undefined) {
    return `could not be started (${status.error.message})`
  }
  if (status.signal !== null) {
    return `was killed by ${status.signal}`
  }
  return `exited with code ${status.code}`
}
