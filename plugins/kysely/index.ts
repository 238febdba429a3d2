export { ReplicaPool, type QueryServed, type ReplicaStatus, type ReplicaPoolStats } from './replica-pool.js'
export {
  resolveReplicaPoolOptions, type ReplicaPoolOptions, type PgServerConfig, type ConsistencyMode, type ResolvedReplicaPoolOptions,
  type ResolvedPgServer,
} from './replica-pool-options.js'
export { ReplicatedPostgresDialect } from './replicated-postgres-dialect.js'
export { ReadOnly, Write } from './routing-decorators.js'
export { readOnly, write, currentScope, type DatabaseScope, type ScopeMode } from './database-scope.js'
export { withConsistencyKey } from './consistency-tracker.js'
export { WRITE_POSITION_PROPERTY } from './write-position.js'
export { migrateToLatest, type MigrateOptions } from './run-migrations.js'
export { PrimaryUnavailableError, isPrimaryUnavailableError } from './errors/primary-unavailable-error.js'
export { MigrationFailedError, isMigrationFailedError, type MigrationTarget } from './errors/migration-failed-error.js'
export { NoReplicaAvailableError, isNoReplicaAvailableError } from './errors/no-replica-available-error.js'
export { WriteInReadOnlyScopeError, isWriteInReadOnlyScopeError } from './errors/write-in-read-only-scope-error.js'
export { TransactionAbortedError, isTransactionAbortedError } from './errors/transaction-aborted-error.js'
export { QueryTimeoutError, isQueryTimeoutError } from './errors/query-timeout-error.js'
export { ReplicaPoolClosedError, isReplicaPoolClosedError } from './errors/replica-pool-closed-error.js'
