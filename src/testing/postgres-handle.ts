import type { ServerHandle } from './server-handle.js'

/**
 * Whether a server accepts writes (`primary`) or replays a primary's WAL as a
 * read-only hot standby (`replica`). A promoted replica becomes a `primary`.
 *
 * @example
 * const role: PostgresRole = topology.replicas[0].role // 'replica'
 */
export type PostgresRole = 'primary' | 'replica'

/**
 * One PostgreSQL server of a local test topology, listening on loopback with
 * trust authentication for the `postgres` user.
 *
 * @example
 * const pool = new pg.Pool({ connectionString: topology.primary!.url })
 * await topology.primary!.kill()    // crash it
 * await topology.replicas[0].promote()
 */
export interface PostgresHandle extends ServerHandle {
  readonly role: PostgresRole
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (no password: trust authentication). */
  readonly url: string
  readonly dataDir: string

  /**
   * Crashes the server with SIGKILL; resolves once the postmaster and all its
   * backends are gone. A restart then runs crash recovery. The topology runs
   * with `synchronous_commit = off`, so commits from the last moments before
   * the crash can be lost; `SET synchronous_commit = on` in a session whose
   * writes must survive.
   *
   * @example
   * await topology.primary!.kill()
   */
  kill(): Promise<void>

  /**
   * Shuts the server down with PostgreSQL's fast mode (SIGINT); resolves once
   * it has exited.
   *
   * @example
   * await topology.replicas[0].stop()
   */
  stop(): Promise<void>

  /**
   * Turns a replica into a primary with `pg_promote()` and resolves once it no
   * longer is in recovery. Throws a `TopologyError` on a primary.
   *
   * @example
   * await topology.primary!.kill()
   * await topology.replicas[0].promote()
   */
  promote(): Promise<void>
}
