import { STRATEGY_NAMES } from '../../src/balancing/create-strategy.js'
import {
  byKind, finiteNumber, identifier, isBoolean, isFunction, isLogger, listOf, matching, nonEmptyString, oneOf, regionName, required, shapeOf, wholeNumber,
  type OptionShape,
} from '../../src/routemq/plugin-api.js'
import type { PgServerConfig, ReplicaPoolOptions } from './replica-pool-options.js'

/** Node's timers and PostgreSQL's statement_timeout take at most 2^31 - 1 ms; the pool sets the latter a little above queryTimeoutMs. */
const MAX_TIMEOUT_MS = 2_000_000_000

const ms = (min: number) => wholeNumber(min, MAX_TIMEOUT_MS)

const PG_SERVER_CONFIG_SHAPE: OptionShape<PgServerConfig> = {
  url: required(nonEmptyString, 'give a URL such as "postgres://app@db-1:5432/app"'),
  id: identifier,
  region: regionName,
  weight: finiteNumber(0),
}

const server = byKind('must be a URL such as "postgres://app@db-1:5432/app", or { url, id?, region?, weight? }', {
  string: true,
  object: shapeOf(PG_SERVER_CONFIG_SHAPE),
})

const PRIMARY_HINT = 'give the primary\'s URL, e.g. "postgres://app@db-1:5432/app"'

type Consistency = NonNullable<ReplicaPoolOptions['consistency']>
type Health = NonNullable<ReplicaPoolOptions['health']>

const CONSISTENCY_SHAPE: OptionShape<Consistency> = {
  mode: oneOf(['lsn', 'window', 'off']),
  windowMs: ms(0),
  waitMs: ms(0),
  maxKeys: wholeNumber(1),
}

const HEALTH_SHAPE: OptionShape<Health> = {
  probeIntervalMs: ms(1),
  probeTimeoutMs: ms(1),
  rise: wholeNumber(1),
  fall: wholeNumber(1),
}

/** The keys and types of `ReplicaPoolOptions` at every depth; URLs and ids are checked by `resolveReplicaPoolOptions`. */
export const REPLICA_POOL_OPTIONS_SHAPE: OptionShape<ReplicaPoolOptions> = {
  primary: required(byKind(`${PRIMARY_HINT}, or a list of candidate primaries`, { string: server, object: server, array: listOf(server, 1, PRIMARY_HINT) }), PRIMARY_HINT),
  replicas: listOf(server),
  strategy: oneOf(STRATEGY_NAMES),
  region: regionName,
  poolSize: wholeNumber(1),
  connectTimeoutMs: ms(1),
  queryTimeoutMs: ms(0),
  closeTimeoutMs: ms(0),
  maxLagMs: wholeNumber(0),
  maxLagBytes: wholeNumber(0),
  fallbackToPrimary: isBoolean,
  readRetries: wholeNumber(0),
  consistency: shapeOf(CONSISTENCY_SHAPE),
  health: shapeOf(HEALTH_SHAPE),
  heartbeatTable: byKind('must be a table name such as routemq_replication_heartbeat, or false', {
    false: true,
    string: matching(/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/i, 'a table name such as routemq_replication_heartbeat, or false'),
  }),
  cursor: isFunction("pg-cursor's Cursor class: import Cursor from 'pg-cursor'"),
  logger: isLogger,
}
