import type { AckOrder } from '../../src/routemq/plugin-api.js'
import type { MqttTlsOptions } from '../../src/routemq/plugin-api.js'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { refuseMisreadUserInfo } from '../../src/routemq/plugin-api.js'
import { checkOptions } from '../../src/routemq/plugin-api.js'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { StrategyName } from '../../src/balancing/balancing-strategy.js'
import type { BrokerEndpoint } from './broker-endpoint.js'
import { BROKER_POOL_OPTIONS_SHAPE } from './broker-pool-options-shape.js'

/**
 * - `'auto'` (default): at start the pool publishes a canary on each broker
 *   and looks for it on the others; brokers that share messages (a cluster)
 *   get `'failover'`, any other set `'all'`.
 * - `'failover'`: one connection at a time, for clustered brokers (EMQX,
 *   HiveMQ, VerneMQ, NATS) where any node sees every message. Refused at start
 *   when the canary shows brokers that do not share messages.
 * - `'all'`: a connection to every broker, every route subscribed on each,
 *   publishes spread over them; for independent brokers (Mosquitto behind a
 *   TCP balancer), where a subscriber on one never sees another's traffic.
 */
export type BrokerPoolMode = 'auto' | 'failover' | 'all'

/** What a pool runs once it knows its brokers: `'auto'` resolved. */
export type EffectiveBrokerPoolMode = 'failover' | 'all'

/** One broker in the pool's configuration. */
export interface BrokerConfig {
  /** `mqtt://`, `mqtts://`, `ws://` or `wss://`. Credentials in the URL are taken out of it. */
  readonly url: string
  /** Name for logs, events and metrics. Default `host:port`. */
  readonly id?: string
  /** Share of publishes under the weighted strategy. Default 1. */
  readonly weight?: number
  readonly region?: string
  readonly username?: string
  readonly password?: string
  /** Take the user name from this environment variable. */
  readonly usernameEnv?: string
  /** Take the password from this environment variable. */
  readonly passwordEnv?: string
  readonly tls?: MqttTlsOptions
}

/** Health checking of the brokers. */
export interface BrokerHealthOptions {
  /** Pause between probes of a healthy broker. Default 750 ms. */
  readonly probeIntervalMs?: number
  /** How long a probe waits for CONNACK. Default 700 ms. With the defaults a dead or blackholed broker is declared down within about 2.2 s. */
  readonly probeTimeoutMs?: number
  /** Good results in a row that bring a broker back. Default 2. */
  readonly rise?: number
  /** Bad results in a row that take a broker out. Default 2. */
  readonly fall?: number
  /** A QoS ≥ 1 publish not acknowledged within this counts against its broker. Default 3000 ms. */
  readonly publishAckTimeoutMs?: number
  /** First retry delay for a down broker (decorrelated jitter). Default 250 ms. */
  readonly backoffBaseMs?: number
  /** Longest retry delay for a down broker. Default 30 000 ms. */
  readonly backoffCapMs?: number
}

/** Publishes waiting for a broker's acknowledgement (in flight or not yet sent). */
export interface OfflineBufferOptions {
  /** Default 10 000. */
  readonly maxMessages?: number
  /** Default 16 MiB. */
  readonly maxBytes?: number
  /** QoS 0 publishes while no broker is connected: `'queue'` (default) or `'drop'`. */
  readonly qos0?: 'queue' | 'drop'
}

/** Persistent sessions of app instances that went away without handing their share back. */
export interface SessionOptions {
  /**
   * Drain the session of an instance of the same `group` that crashed or was
   * scaled in and did not come back within `orphanAfterSeconds`: connect with
   * its client id, stop its subscriptions, handle what the broker kept for it,
   * and end the session. Default true.
   */
  readonly adoptOrphans?: boolean
  /**
   * How long a crashed instance's session waits for the instance before
   * another instance adopts it (the MQTT 5 will delay). Default 15 s.
   */
  readonly orphanAfterSeconds?: number
}

/** Options of `BrokerPool`. */
export interface BrokerPoolOptions {
  readonly brokers: readonly (string | BrokerConfig)[]
  /** Default `'auto'`: see `BrokerPoolMode`. */
  readonly mode?: BrokerPoolMode
  /**
   * Check at start (and when a broker returns) whether the brokers share
   * messages, with a canary under `controlTopic`. Default true; `false` needs
   * an explicit `mode` and is logged at start.
   */
  readonly topologyCheck?: boolean
  /** How long the canary waits to be seen on the other brokers. Default 1500 ms. */
  readonly topologyCheckTimeoutMs?: number
  /**
   * The app these instances are: their sessions, presence and canaries live
   * under `<controlTopic>/<group>/`, and instances of one group adopt each
   * other's orphaned sessions. Use the router's `sharedGroup`. Default `'routemq'`.
   */
  readonly group?: string
  /** Prefix of the pool's own topics (presence, wills, canaries, drain markers). Default `'routemq/control'`. */
  readonly controlTopic?: string
  readonly sessions?: SessionOptions
  /**
   * MQTT 5: the most unacknowledged QoS 1/2 messages each broker may send at
   * once. What a broker holds beyond it sits in the broker's own queue,
   * where a crash of the broker loses it and its queue limit drops it; so the
   * default is large. Default 4096.
   */
  readonly receiveMaximum?: number
  /**
   * Follow Mosquitto's `$SYS/broker/publish/messages/dropped` on every broker:
   * drops become a metric, an ERROR log per episode and a failing `broker/<id>`
   * check. Default true.
   */
  readonly watchBrokerDrops?: boolean
  /** How a broker is chosen (failover mode) or a publish spread (all mode). Default `'least-latency'`. */
  readonly strategy?: StrategyName
  /** Prefer brokers of this region when any is healthy. */
  readonly region?: string
  /**
   * Client id of this app instance. Default `routemq-<host>-<pid>`. A stable
   * one (a StatefulSet pod name) lets a restarted instance resume its own
   * session; without one, another instance adopts the old session.
   */
  readonly clientId?: string
  /** `false` (default): persistent sessions, which keep what arrives while a connection is down. */
  readonly clean?: boolean
  /** MQTT 5: how long a persistent session outlives a disconnect. Default 3600. */
  readonly sessionExpirySeconds?: number
  /** 5 (default) or 4 for MQTT 3.1.1. */
  readonly protocolVersion?: 4 | 5
  /** Default 10. */
  readonly keepaliveSeconds?: number
  /** How long connecting to one broker may take. Default 2000 ms. */
  readonly connectTimeoutMs?: number
  /** How long `connect()` may wait for a first broker. Default 30 000 ms. */
  readonly startTimeoutMs?: number
  /** How long `close()` waits for acknowledgements of publishes in flight. Default 5000 ms. */
  readonly closeTimeoutMs?: number
  readonly ackOrder?: AckOrder
  readonly health?: BrokerHealthOptions
  readonly offlineBuffer?: OfflineBufferOptions
  /** Where `usernameEnv` / `passwordEnv` are read. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly logger?: Logger
}

/** Options with every default filled in and every broker resolved. */
export interface ResolvedBrokerPoolOptions {
  readonly brokers: readonly BrokerEndpoint[]
  readonly mode: BrokerPoolMode
  readonly topologyCheck: boolean
  readonly topologyCheckTimeoutMs: number
  readonly group: string
  readonly controlTopic: string
  readonly sessions: Required<SessionOptions>
  readonly receiveMaximum: number
  readonly watchBrokerDrops: boolean
  readonly strategy: StrategyName
  readonly region: string | undefined
  readonly clientId: string
  readonly clean: boolean
  readonly sessionExpirySeconds: number
  readonly protocolVersion: 4 | 5
  readonly keepaliveSeconds: number
  readonly connectTimeoutMs: number
  readonly startTimeoutMs: number
  readonly closeTimeoutMs: number
  readonly ackOrder: AckOrder
  readonly health: Required<BrokerHealthOptions>
  readonly offlineBuffer: Required<OfflineBufferOptions>
}

/** How long the other instances of a group give the first one to adopt an orphaned session. */
export const ADOPTION_STANDBY_MS = 10_000
/** The standby, and time for the adoption itself. */
const ADOPTION_STANDBY_SECONDS = ADOPTION_STANDBY_MS / 1000 + 20

const PROTOCOLS: Readonly<Record<string, BrokerEndpoint['protocol']>> = { 'mqtt:': 'mqtt', 'mqtts:': 'mqtts', 'ws:': 'ws', 'wss:': 'wss' }
const DEFAULT_PORTS: Readonly<Record<BrokerEndpoint['protocol'], number>> = { mqtt: 1883, mqtts: 8883, ws: 80, wss: 443 }

/**
 * Checks every option and fills in defaults. Each error names the offending
 * field (`brokers[1].url`, `health.probeTimeoutMs`, ...) and never echoes a
 * password.
 *
 * @example
 * resolveBrokerPoolOptions({ brokers: ['mqtt://a:1883', 'mqtt://b:1883'] }, 'routemq-host-1')
 */
export function resolveBrokerPoolOptions(options: BrokerPoolOptions, defaultClientId: string): ResolvedBrokerPoolOptions {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('brokerPool', 'pass { brokers: [...] }')
  checkOptions(options, BROKER_POOL_OPTIONS_SHAPE, '')
  const env = options.env ?? process.env
  const brokers = options.brokers.map((broker, index) => resolveBroker(broker, `brokers[${index}]`, env))
  const ids = new Set<string>()
  brokers.forEach((broker, index) => {
    if (ids.has(broker.id)) throw new InvalidOptionError(`brokers[${index}].id`, `"${broker.id}" is used twice; give each broker its own id`)
    ids.add(broker.id)
  })
  const mode = options.mode ?? 'auto'
  const clean = options.clean ?? false
  const topologyCheck = options.topologyCheck ?? true
  if (!topologyCheck && mode === 'auto') {
    throw new InvalidOptionError('topologyCheck', "false needs an explicit mode: 'failover' for brokers that share messages (a cluster), 'all' for independent ones")
  }
  const sessions = options.sessions ?? {}
  const adoptOrphans = sessions.adoptOrphans ?? true
  if (!clean && !adoptOrphans && options.clientId === undefined) {
    throw new InvalidOptionError('clientId', 'a persistent session (clean: false) that no other instance adopts needs a stable clientId, the same on every start of this instance')
  }
  const health = options.health ?? {}
  const buffer = options.offlineBuffer ?? {}
  const resolved: ResolvedBrokerPoolOptions = {
    brokers,
    mode,
    topologyCheck,
    topologyCheckTimeoutMs: options.topologyCheckTimeoutMs ?? 1500,
    group: options.group ?? 'routemq',
    controlTopic: options.controlTopic ?? 'routemq/control',
    sessions: { adoptOrphans, orphanAfterSeconds: sessions.orphanAfterSeconds ?? 15 },
    receiveMaximum: options.receiveMaximum ?? 4096,
    watchBrokerDrops: options.watchBrokerDrops ?? true,
    strategy: options.strategy ?? 'least-latency',
    region: options.region,
    clientId: options.clientId ?? defaultClientId,
    clean,
    sessionExpirySeconds: options.sessionExpirySeconds ?? 3600,
    protocolVersion: options.protocolVersion ?? 5,
    keepaliveSeconds: options.keepaliveSeconds ?? 10,
    connectTimeoutMs: options.connectTimeoutMs ?? 2000,
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    closeTimeoutMs: options.closeTimeoutMs ?? 5000,
    ackOrder: options.ackOrder ?? 'arrival',
    health: {
      probeIntervalMs: health.probeIntervalMs ?? 750,
      probeTimeoutMs: health.probeTimeoutMs ?? 700,
      rise: health.rise ?? 2,
      fall: health.fall ?? 2,
      publishAckTimeoutMs: health.publishAckTimeoutMs ?? 3000,
      backoffBaseMs: health.backoffBaseMs ?? 250,
      backoffCapMs: health.backoffCapMs ?? 30_000,
    },
    offlineBuffer: {
      maxMessages: buffer.maxMessages ?? 10_000,
      maxBytes: buffer.maxBytes ?? 16 * 1024 * 1024,
      qos0: buffer.qos0 ?? 'queue',
    },
  }
  // A kept or orphaned session must outlive the wait for its adoption (the will delay, the other instances' standby),
  // or what it holds expires with it.
  const adoptionWindow = resolved.sessions.orphanAfterSeconds + ADOPTION_STANDBY_SECONDS
  if (!resolved.clean && resolved.sessions.adoptOrphans && resolved.sessionExpirySeconds < adoptionWindow) {
    throw new InvalidOptionError('sessionExpirySeconds', `a persistent session must outlive its adoption: at least sessions.orphanAfterSeconds + ${ADOPTION_STANDBY_SECONDS} (${adoptionWindow}); set clean: true for sessions that end with the connection`)
  }
  if (resolved.health.backoffCapMs < resolved.health.backoffBaseMs) {
    throw new InvalidOptionError('health.backoffCapMs', 'must not be smaller than health.backoffBaseMs')
  }
  return Object.freeze(resolved)
}

function resolveBroker(broker: string | BrokerConfig, field: string, env: Readonly<Record<string, string | undefined>>): BrokerEndpoint {
  const config: BrokerConfig = typeof broker === 'string' ? { url: broker } : broker
  let url: URL
  try {
    url = new URL(config.url)
  } catch {
    throw new InvalidOptionError(`${field}.url`, 'is not a URL; write it as mqtt://host:port')
  }
  const protocol = PROTOCOLS[url.protocol]
  if (!protocol) {
    // 'localhost:1883' parses with 'localhost:' as its scheme: say what is missing rather than what was misread.
    throw new InvalidOptionError(`${field}.url`, String(config.url).includes('://')
      ? `protocol "${url.protocol}" is not supported; use mqtt://, mqtts://, ws:// or wss://`
      : `has no scheme ("${url.protocol}" was read as one); start it with mqtt://, mqtts://, ws:// or wss://, as in mqtt://localhost:1883`)
  }
  if (!url.hostname) throw new InvalidOptionError(`${field}.url`, 'has no host')
  refuseMisreadUserInfo(url, `${field}.url`, { hint: 'or give it as password or passwordEnv' })
  const port = url.port ? Number(url.port) : DEFAULT_PORTS[protocol]
  const username = fromEnv(config.usernameEnv, `${field}.usernameEnv`, env) ?? config.username ?? decoded(url.username, `${field}.url`)
  const password = fromEnv(config.passwordEnv, `${field}.passwordEnv`, env) ?? config.password ?? decoded(url.password, `${field}.url`)
  const path = url.pathname === '/' ? '' : url.pathname
  if (config.tls !== undefined && (protocol === 'mqtt' || protocol === 'ws')) {
    throw new InvalidOptionError(`${field}.tls`, `TLS settings need an mqtts:// or wss:// URL, not ${protocol}://`)
  }
  return Object.freeze({
    id: config.id ?? `${url.hostname}:${port}`,
    url: `${protocol}://${url.host}${path}`,
    host: url.hostname,
    port,
    protocol,
    username,
    password,
    tls: config.tls,
    weight: config.weight ?? 1,
    region: config.region,
  })
}

function decoded(value: string, field: string): string | undefined {
  if (!value) return undefined
  try {
    return decodeURIComponent(value)
  } catch {
    throw new InvalidOptionError(field, 'has a malformed %-escape in its user name or password')
  }
}

function fromEnv(name: string | undefined, field: string, env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (name === undefined) return undefined
  const value = env[name]
  if (value === undefined || value === '') throw new InvalidOptionError(field, `environment variable ${name} is not set`)
  return value
}
