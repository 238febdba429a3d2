import type { PostgresCursorConstructor } from 'kysely'

interface CursorConnection {
  readonly stream?: { readonly destroyed?: boolean }
  once(event: 'end', listener: () => void): unknown
  removeListener(event: 'end', listener: () => void): unknown
}

type CursorClass = new (...args: any[]) => { connection?: CursorConnection; close(): Promise<void> }

/**
 * pg-cursor's Cursor, except that closing it on a connection that is gone
 * (its socket closed, e.g. by the pool when the probes found the server
 * dead) returns at once: pg-cursor's own close() waits for a ReadyForQuery
 * that a dead connection never sends, and Kysely closes the cursor when a
 * stream ends, so the stream would hang instead of failing.
 *
 * @example
 * new PostgresDriver({ pool, cursor: closableCursor(Cursor) })
 */
export function closableCursor(Cursor: PostgresCursorConstructor): PostgresCursorConstructor {
  const Base = Cursor as unknown as CursorClass
  class ClosableCursor extends Base {
    override close(): Promise<void> {
      const connection = this.connection
      if (!connection || connection.stream?.destroyed) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const ended = (): void => resolve()
        connection.once('end', ended)
        super.close().then(
          () => {
            connection.removeListener('end', ended)
            resolve()
          },
          (error: unknown) => {
            connection.removeListener('end', ended)
            reject(error)
          },
        )
      })
    }
  }
  return ClosableCursor as unknown as PostgresCursorConstructor
}
