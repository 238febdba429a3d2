import type { PostgresCursorConstructor } from 'kysely'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { refuseMisreadUserInfo } from '../../src/routemq/plugin-api.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import { REPLICA_POOL_OPTIONS_SHAPE } from './replica-pool-options-shape.js'
import type { StrategyName } from '../../src/balancing/balancing-strategy.js'

/** A PostgreSQL server in the configuration. */
export interface PgServerConfig {
  /** `postgres://user:password@host:port/database` */
  readonly url: string
  /** Name for logs, events and metrics. Default `host:port`. */
  readonly id?: string
  readonly region?: string
  /** Share of reads under the weighted strategy. Default 1. */
  readonly weight?: number
}

/**
 * How reads after a write are kept consistent:
 * - `'lsn'` (default): after a write in a consistency scope, later reads of that
 *   scope go only to replicas that have replayed the primary's WAL up to it;
 * - `'window'`: reads of the scope go to the primary for `windowMs` after a write;
 * - `'off'`: no such guarantee.
 */
export type ConsistencyMode = 'lsn' | 'window' | 'off'

/** Options of `ReplicaPool`. */
export interface ReplicaPoolOptions {
  /**
   * The primary, or every candidate primary: the one not in recovery is used, and found again after a promotion.
   * A replica that may be promoted is listed here and under `replicas`.
   */
  readonly primary: string | PgServerConfig | readonly (string | PgServerConfig)[]
  readonly replicas?: readonly (string | PgServerConfig)[]
  /** Default `'least-latency'`. */
  readonly strategy?: StrategyName
  /** Prefer replicas of this region (the message's region, when the geo plugin sets it, wins). */
  readonly region?: string
  /** Connections per server. Default 10. */
  readonly poolSize?: number
  /** How long to wait for a connection; also how fast writes fail when the primary is down. Default 2000 ms. */
  readonly connectTimeoutMs?: number
  /**
   * Longest wait for a query's answer; then its connection is closed and the
   * query fails with QueryTimeoutError (a read is tried elsewhere). 0 turns the
   * limit off. Default 30 000 ms.
   */
  readonly queryTimeoutMs?: number
  /** How long `close()` lets queries and transactions in flight finish before closing their connections. Default 5000 ms. */
  readonly closeTimeoutMs?: number
  /**
   * Replicas further behind than this get no reads. Default 30 000 ms. Lag is
   * measured at each probe, against the primary's WAL positions over time.
   */
  readonly maxLagMs?: number
  /** Replicas further behind than this many WAL bytes get no reads. Default: no byte limit. */
  readonly maxLagBytes?: number
  /** When no replica can serve a read, read from the primary. Default true. */
  readonly fallbackToPrimary?: boolean
  /** Other replicas tried after a read fails with a connection error. Default 2. */
  readonly readRetries?: number
  readonly consistency?: {
    readonly mode?: ConsistencyMode
    /** For `'window'`: how long reads stay on the primary after a write. Default 2000 ms. */
    readonly windowMs?: number
    /**
     * For `'lsn'`: how long a read after a write waits for a replica to
     * replay it (asking the replicas near enough where they are) before it
     * reads from the primary. Default 50 ms; 0 sends such reads to the primary
     * unless a replica is already known to have the write.
     */
    readonly waitMs?: number
    /** Explicit consistency keys remembered (least recently used ones are forgotten). Default 10 000. */
    readonly maxKeys?: number
  }
  readonly health?: {
    /** Default 1000 ms. */
    readonly probeIntervalMs?: number
    /** Default 1000 ms. */
    readonly probeTimeoutMs?: number
    readonly rise?: number
    readonly fall?: number
  }
  /** The replication heartbeat table the pool updates on the primary (see migrations/). `false` to rely on replay timestamps. */
  readonly heartbeatTable?: string | false
  /**
   * pg-cursor's `Cursor` class, for `.stream()`, as Kysely's PostgresDialect
   * takes it: `import Cursor from 'pg-cursor'`. Without it, streaming fails
   * with an error naming this option.
   */
  readonly cursor?: PostgresCursorConstructor
  readonly logger?: Logger
}

/** A server with everything resolved. */
export interface ResolvedPgServer {
  readonly id: string
  readonly connectionString: string
  readonly region: string | undefined
  readonly weight: number
}

/** `maxLagMs` when none is given: replicas further behind get no reads. */
export const DEFAULT_MAX_LAG_MS = 30_000

/** Options with defaults filled in. */
export interface ResolvedReplicaPoolOptions {
  readonly primaries: readonly ResolvedPgServer[]
  readonly replicas: readonly ResolvedPgServer[]
  readonly strategy: StrategyName
  readonly region: string | undefined
  readonly poolSize: number
  readonly connectTimeoutMs: number
  readonly queryTimeoutMs: number
  readonly closeTimeoutMs: number
  readonly maxLagMs: number
  readonly maxLagBytes: number | undefined
  readonly fallbackToPrimary: boolean
  readonly readRetries: number
  readonly consistency: { readonly mode: ConsistencyMode; readonly windowMs: number; readonly waitMs: number; readonly maxKeys: number }
  readonly health: { readonly probeIntervalMs: number; readonly probeTimeoutMs: number; readonly rise: number; readonly fall: number }
  readonly heartbeatTable: string | false
  readonly cursor: PostgresCursorConstructor | undefined
}

/**
 * Checks every option, naming the offending field (`replicas[1].url`, ...)
 * without echoing a password, and fills in defaults.
 *
 * @example
 * resolveReplicaPoolOptions({ primary: 'postgres://app@db-1/app', replicas: ['postgres://app@db-2/app'] })
 */
export function resolveReplicaPoolOptions(options: ReplicaPoolOptions): ResolvedReplicaPoolOptions {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('database', 'pass { primary, replicas }')
  checkOptions(options, REPLICA_POOL_OPTIONS_SHAPE, '')
  const primaryList = Array.isArray(options.primary) ? options.primary as readonly (string | PgServerConfig)[] : [options.primary as string | PgServerConfig]
  const primaries = primaryList.map((server, i) => resolveServer(server, Array.isArray(options.primary) ? `primary[${i}]` : 'primary'))
  const replicas = (options.replicas ?? []).map((server, i) => resolveServer(server, `replicas[${i}]`))
  // A server may be both a replica and a candidate primary (it takes over when promoted), but not twice in one list.
  unique(primaries, Array.isArray(options.primary) ? 'primary' : undefined)
  unique(replicas, 'replicas')
  return Object.freeze({
    cursor: options.cursor,
    primaries,
    replicas,
    strategy: options.strategy ?? 'least-latency',
    region: options.region,
    poolSize: options.poolSize ?? 10,
    connectTimeoutMs: options.connectTimeoutMs ?? 2000,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 5000,
    maxLagMs: options.maxLagMs ?? DEFAULT_MAX_LAG_MS,
    maxLagBytes: options.maxLagBytes,
    fallbackToPrimary: options.fallbackToPrimary ?? true,
    readRetries: options.readRetries ?? 2,
    consistency: {
      mode: options.consistency?.mode ?? 'lsn',
      windowMs: options.consistency?.windowMs ?? 2000,
      waitMs: options.consistency?.waitMs ?? 50,
      maxKeys: options.consistency?.maxKeys ?? 10_000,
    },
    health: {
      probeIntervalMs: options.health?.probeIntervalMs ?? 1000,
      probeTimeoutMs: options.health?.probeTimeoutMs ?? 1000,
      rise: options.health?.rise ?? 2,
      fall: options.health?.fall ?? 2,
    },
    heartbeatTable: options.heartbeatTable ?? 'routemq_replication_heartbeat',
  })
}

function unique(servers: readonly ResolvedPgServer[], list: string | undefined): void {
  const ids = new Set<string>()
  servers.forEach((server, i) => {
    if (ids.has(server.id)) throw new InvalidOptionError(`${list ?? 'primary'}[${i}].id`, `"${server.id}" is listed twice; give each server once, or an id of its own`)
    ids.add(server.id)
  })
}

function resolveServer(server: string | PgServerConfig, field: string): ResolvedPgServer {
  const config: PgServerConfig = typeof server === 'string' ? { url: server } : server
  let url: URL
  try {
    url = new URL(config.url)
  } catch {
    throw new InvalidOptionError(`${field}.url`, 'is not a URL; write it as postgres://user@host:port/database')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidOptionError(`${field}.url`, String(config.url).includes('://')
      ? `protocol "${url.protocol}" is not supported; use postgres://`
      : `has no scheme ("${url.protocol}" was read as one); write it as postgres://user@host:5432/database`)
  }
  refuseMisreadUserInfo(url, `${field}.url`, { queryValuesMayHoldAt: true })
  return Object.freeze({
    id: config.id ?? `${url.hostname}:${url.port || '5432'}`,
    connectionString: config.url,
    region: config.region,
    weight: config.weight ?? 1,
  })
}
