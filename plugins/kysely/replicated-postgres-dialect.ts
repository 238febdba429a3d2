import { PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type DatabaseIntrospector, type Dialect, type Driver, type Kysely, type QueryCompiler, type DialectAdapter } from 'kysely'
import type { ReplicaPool } from './replica-pool.js'
import { ReplicatedDriver } from './replicated-driver.js'

/**
 * A Kysely dialect over a `ReplicaPool`: PostgreSQL SQL, with selects on
 * replicas and everything else on the primary, as the pool's routing rules
 * and the `@ReadOnly()` / `@Write()` scopes say.
 *
 * @example
 * const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(await ReplicaPool.create(options)) })
 */
export class ReplicatedPostgresDialect implements Dialect {
  readonly #pool: ReplicaPool

  constructor(pool: ReplicaPool) {
    this.#pool = pool
  }

  createDriver(): Driver {
    return new ReplicatedDriver(this.#pool)
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler()
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter()
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's Dialect interface declares it so
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db)
  }
}
