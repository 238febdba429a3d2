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
  /**
   * `postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable`: no
   * password (trust authentication), and no TLS whatever PGSSLMODE says, as
   * the server offers none.
   */
  readonly url: string
  readonly dataDir: string

  /**
   * Crashes the whole server: SIGKILLs the postmaster and every backend and
   * auxiliary process, so running queries end with a connection error just
   * as they would if the machine died; resolves once all of them are gone. A restart then runs crash recovery. The topology runs
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
   * longer is in recovery; `topology.primary` returns it from then on. Throws
   * a `TopologyError` on a primary.
   *
   * @example
   * await topology.primary!.kill()
   * await topology.replicas[0].promote()
   */
  promote(): Promise<void>

  /**
   * Makes a replica stream from another server: rewrites `primary_conninfo`
   * (and `primary_slot_name`) with ALTER SYSTEM and reloads the
   * configuration, which restarts the WAL receiver without restarting the
   * server. It resolves once the setting is in place; the receiver connects
   * a moment later, and follows a promoted server's new timeline as long as
   * this replica has not received WAL beyond the promotion point (a cleanly
   * stopped old primary guarantees that; a crashed one may not).
   *
   * Given a handle, its replication slot is created there first if missing,
   * since slots are not replicated to a promoted server. Given a plain
   * address, such as a TCP fault proxy on the replication link, it is used
   * as is: the server behind it must already have the slot, as the current
   * primary does (follow the handle first, then the proxy in front of it).
   * Throws a `TopologyError` on a primary or a server that is not running.
   *
   * @example
   * await topology.primary!.stop()
   * await topology.replicas[0].promote()
   * await topology.replicas[1].follow(topology.primary!)
   * await topology.replicas[1].follow({ host: '127.0.0.1', port: proxyPort })
   */
  follow(primary: PostgresHandle | { readonly host: string; readonly port: number }): Promise<void>
}
