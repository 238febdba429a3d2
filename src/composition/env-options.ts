import { readFileSync } from 'node:fs'
import type { PgServerConfig } from '../../plugins/kysely/replica-pool-options.js'
import { InvalidOptionError } from '../routemq/errors/invalid-option-error.js'
import { ConsoleLogger, type LogFormat, type LogLevel } from '../routemq/logger.js'
import { closestNames } from '../routemq/known-options.js'
import { redactUrl } from '../routemq/redact-url.js'
import { scrubSecrets } from '../routemq/scrub-secrets.js'
import { validateLoadBalancingOptions, type LoadBalancingOptions } from './load-balancing-options.js'

type Env = Readonly<Record<string, string | undefined>>

/** One variable: its name, what it sets (an option path, for errors), and what it means (for the README's table). */
interface Variable {
  readonly name: string
  readonly option: string
  readonly meaning: string
}

/** Every variable `fromEnv` reads, in the README's order. */
export const ENV_VARIABLES: readonly Variable[] = [
  { name: 'ROUTEMQ_MQTT_BROKERS', option: 'mqtt.brokers', meaning: 'Broker URLs, comma-separated (mqtt://, mqtts://, ws://, wss://). Turns the broker pool on.' },
  { name: 'ROUTEMQ_MQTT_MODE', option: 'mqtt.mode', meaning: '`auto` (checks whether the brokers share messages), `failover` (a cluster) or `all` (independent brokers such as Mosquitto). Default auto.' },
  { name: 'ROUTEMQ_MQTT_STRATEGY', option: 'mqtt.strategy', meaning: 'round-robin, random, weighted, least-outstanding, least-latency, priority. Default least-latency.' },
  { name: 'ROUTEMQ_MQTT_REGION', option: 'mqtt.region', meaning: 'Prefer brokers tagged with this region.' },
  { name: 'ROUTEMQ_MQTT_CLIENT_ID', option: 'mqtt.clientId', meaning: 'Client id of this instance; a stable one (a StatefulSet pod name) resumes its own session after a restart. Default routemq-<host>-<pid>.' },
  { name: 'ROUTEMQ_MQTT_CLEAN', option: 'mqtt.clean', meaning: '`true` for clean sessions, which lose what a broker held for a crashed instance. Default false.' },
  { name: 'ROUTEMQ_MQTT_USERNAME', option: 'mqtt.brokers', meaning: 'User name for every broker.' },
  { name: 'ROUTEMQ_MQTT_PASSWORD', option: 'mqtt.brokers', meaning: 'Password for every broker (never logged).' },
  { name: 'ROUTEMQ_MQTT_PROTOCOL_VERSION', option: 'mqtt.protocolVersion', meaning: '5 or 4 (MQTT 3.1.1). Default 5.' },
  { name: 'ROUTEMQ_MQTT_CONNECT_TIMEOUT_MS', option: 'mqtt.connectTimeoutMs', meaning: 'How long one attempt to connect to one broker may take. Default 2000.' },
  { name: 'ROUTEMQ_MQTT_START_TIMEOUT_MS', option: 'mqtt.startTimeoutMs', meaning: "How long `app.start()` waits for a first broker; then it fails with `ConnectionFailedError` naming each broker and its last error (a dead URL's ECONNREFUSED). Default 30000." },
  { name: 'ROUTEMQ_DATABASE_URL', option: 'database.primary', meaning: "The primary's URL; several, comma-separated, for candidate primaries. Turns the replica pool on." },
  { name: 'ROUTEMQ_DATABASE_REPLICA_URLS', option: 'database.replicas', meaning: 'Replica URLs, comma-separated.' },
  { name: 'ROUTEMQ_DATABASE_REPLICA_REGIONS', option: 'database.replicas', meaning: 'The region of each replica, comma-separated in the same order (empty for none).' },
  { name: 'ROUTEMQ_DATABASE_REGION', option: 'database.region', meaning: "Prefer replicas of this region when the message has none." },
  { name: 'ROUTEMQ_DATABASE_STRATEGY', option: 'database.strategy', meaning: 'How a replica is chosen; as for brokers. Default least-latency.' },
  { name: 'ROUTEMQ_DATABASE_MAX_LAG_MS', option: 'database.maxLagMs', meaning: 'Replicas further behind get no reads. Default 30000.' },
  { name: 'ROUTEMQ_DATABASE_MAX_LAG_BYTES', option: 'database.maxLagBytes', meaning: 'The same in WAL bytes. Default: no limit.' },
  { name: 'ROUTEMQ_DATABASE_CONSISTENCY', option: 'database.consistency.mode', meaning: '`lsn` (read-your-writes by WAL position), `window` or `off`. Default lsn.' },
  { name: 'ROUTEMQ_DATABASE_QUERY_TIMEOUT_MS', option: 'database.queryTimeoutMs', meaning: 'Longest wait for a query; 0 for none. Default 30000.' },
  { name: 'ROUTEMQ_DATABASE_POOL_SIZE', option: 'database.poolSize', meaning: 'Connections per server. Default 10.' },
  { name: 'ROUTEMQ_DATABASE_FALLBACK_TO_PRIMARY', option: 'database.fallbackToPrimary', meaning: 'Read from the primary when no replica can. Default true.' },
  { name: 'ROUTEMQ_DATABASE_MIGRATE', option: 'database.migrate', meaning: "Run the package's migrations at start. Default false." },
  { name: 'ROUTEMQ_GEOIP_DATABASE', option: 'geo.database', meaning: 'Path of the MaxMind DB (.mmdb). Turns geographic routing on.' },
  { name: 'ROUTEMQ_GEOIP_RULES_FILE', option: 'geo', meaning: 'JSON file with `{ defaultRegion, rules, endpoints }`.' },
  { name: 'ROUTEMQ_GEOIP_DEFAULT_REGION', option: 'geo.defaultRegion', meaning: "Region of addresses no rule matches (overrides the rules file's)." },
  { name: 'ROUTEMQ_GEOIP_CACHE_SIZE', option: 'geo.cacheSize', meaning: 'Lookups remembered; 0 for none. Default 10000.' },
  { name: 'ROUTEMQ_HEALTH_ENABLED', option: 'health', meaning: '`false` for no health endpoints, checks or signal handling. Default true.' },
  { name: 'ROUTEMQ_HEALTH_HOST', option: 'health.http.host', meaning: 'Where /health, /ready and /metrics listen. Default 127.0.0.1.' },
  { name: 'ROUTEMQ_HEALTH_PORT', option: 'health.http.port', meaning: 'Their port. Default 9464.' },
  { name: 'ROUTEMQ_HEALTH_DRAIN_DELAY_MS', option: 'health.shutdown.drainDelayMs', meaning: 'On SIGTERM, time between failing /ready and stopping. Default 5000.' },
  { name: 'ROUTEMQ_STATUS_PAGE_ENABLED', option: 'health.statusPage', meaning: '`false` for no status page (/status, /status.json). Default true.' },
  { name: 'ROUTEMQ_METRICS_ENABLED', option: 'metrics', meaning: '`false` for no /metrics. Default true.' },
  { name: 'ROUTEMQ_METRICS_PREFIX', option: 'metrics.prefix', meaning: 'Put before every metric name. Default routemq_.' },
  { name: 'ROUTEMQ_LOG_LEVEL', option: 'logger.level', meaning: '`debug`, `info`, `warn`, `error` or `silent`: the lowest level written. Default info.' },
  { name: 'ROUTEMQ_LOG_FORMAT', option: 'logger.format', meaning: '`text` or `json` (one object per line, errors with stack and cause). Default text.' },
  // Read only by `render` (the balancer configs), ignored by the module.
  { name: 'ROUTEMQ_INFRA_NAME', option: 'infra.name', meaning: 'render: name of the generated sections and resources. Default routemq.' },
  { name: 'ROUTEMQ_INFRA_APP_INSTANCES', option: 'infra.appInstances', meaning: "render: the app instances' health endpoints, `host:port`, comma-separated. Default the health server's." },
  { name: 'ROUTEMQ_INFRA_MQTT_PORT', option: 'infra.listen.mqtt', meaning: 'render: where the balancer takes MQTT. Default 1883.' },
  { name: 'ROUTEMQ_INFRA_WEBSOCKET_PORT', option: 'infra.listen.websocket', meaning: 'render: where it takes MQTT over WebSocket (for ws:// brokers). Default 8083.' },
  { name: 'ROUTEMQ_INFRA_HTTP_PORT', option: 'infra.listen.http', meaning: "render: where it serves the app's HTTP endpoints (/health, /ready, /metrics), an internal listener. Default 8080." },
  { name: 'ROUTEMQ_INFRA_STATS_PORT', option: 'infra.listen.stats', meaning: 'render: the HAProxy stats page, an internal listener. Default 8404.' },
  { name: 'ROUTEMQ_INFRA_INTERNAL_HOST', option: 'infra.internal.host', meaning: 'render: the address the internal listeners bind. Default 127.0.0.1; any other needs the two variables below (HAProxy only).' },
  { name: 'ROUTEMQ_INFRA_INTERNAL_USER_ENV', option: 'infra.internal.userEnv', meaning: "render: the name of the variable in HAProxy's environment holding the internal listeners' user (the value never enters the config)." },
  { name: 'ROUTEMQ_INFRA_INTERNAL_PASSWORD_ENV', option: 'infra.internal.passwordEnv', meaning: "render: the name of the variable in HAProxy's environment holding their password." },
  { name: 'ROUTEMQ_INFRA_BALANCE', option: 'infra.balance', meaning: 'render: `leastconn` or `roundrobin`. Default leastconn.' },
  { name: 'ROUTEMQ_INFRA_CHECK_INTERVAL_MS', option: 'infra.check.intervalMs', meaning: 'render: broker check interval. Default 2000.' },
  { name: 'ROUTEMQ_INFRA_CHECK_FALL', option: 'infra.check.fall', meaning: 'render: failed checks that take a broker out. Default 3.' },
  { name: 'ROUTEMQ_INFRA_CHECK_RISE', option: 'infra.check.rise', meaning: 'render: good checks that let a returning broker in. Default: enough for the app to have subscribed there (3).' },
  { name: 'ROUTEMQ_INFRA_CHECK_REQUIRE_SUBSCRIBER', option: 'infra.check.requireSubscriber', meaning: 'render: HAProxy lets devices onto a broker only while the app is subscribed there (MQTT 5). Default true with MQTT 5.' },
  { name: 'ROUTEMQ_INFRA_DEVICE_KEEPALIVE_SECONDS', option: 'infra.deviceKeepaliveSeconds', meaning: "render: the devices' longest keepalive; idle timeouts exceed 1.5 times it. Default 60." },
  { name: 'ROUTEMQ_INFRA_PROXY_PROTOCOL', option: 'infra.proxyProtocol', meaning: 'render: send the PROXY protocol to the brokers. Default false.' },
  { name: 'ROUTEMQ_INFRA_IMAGE', option: 'infra.image', meaning: "render: the app's container image for Kubernetes. Default routemq-app:latest." },
  { name: 'ROUTEMQ_INFRA_REPLICAS', option: 'infra.replicas', meaning: 'render: app instances in the Deployment. Default 2.' },
  { name: 'ROUTEMQ_INFRA_INGRESS_HOST', option: 'infra.ingressHost', meaning: "render: refused. An Ingress would publish the app's health endpoints, its only HTTP; MQTT goes through the `<name>-mqtt` Service." },
]

const KNOWN = new Set(ENV_VARIABLES.map((variable) => variable.name))

/**
 * Reads `LoadBalancingOptions` from environment variables (see
 * `ENV_VARIABLES`); a part is on when its main variable is set. An unknown
 * `ROUTEMQ_` variable (a typo), a malformed value, or a value the options
 * refuse fails with `InvalidOptionError` whose `field` is the variable.
 *
 * @example
 * loadBalancingOptionsFromEnv({ ROUTEMQ_MQTT_BROKERS: 'mqtt://b1:1883,mqtt://b2:1883', ROUTEMQ_MQTT_MODE: 'all' })
 */
export function loadBalancingOptionsFromEnv(env: Env = process.env, overrides: Partial<LoadBalancingOptions> = {}): LoadBalancingOptions {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new InvalidOptionError('env', 'must be an object of environment variables, such as process.env')
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new InvalidOptionError('overrides', 'must be an object of options, such as { mqtt: { keepaliveSeconds: 30 } }, merged over what the environment gives')
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('ROUTEMQ_')) continue
    const value = env[name]
    if (!KNOWN.has(name) && value !== undefined) {
      throw new InvalidOptionError(name, `is not a variable this package reads; did you mean one of ${closest(name)}?`)
    }
    // process.env holds only strings; another object may not, and a number would fail later as a TypeError.
    if (value !== undefined && typeof value !== 'string') throw new InvalidOptionError(name, `must be a string, as environment variables are, not ${value === null ? 'null' : typeof value}`)
  }
  const read = new Reader(env)
  const options: Record<string, unknown> = {}

  const brokers = read.list('ROUTEMQ_MQTT_BROKERS')
  if (brokers) {
    // Credentials exactly as given: spaces may be part of them.
    const username = env.ROUTEMQ_MQTT_USERNAME === '' ? undefined : env.ROUTEMQ_MQTT_USERNAME
    const password = env.ROUTEMQ_MQTT_PASSWORD === '' ? undefined : env.ROUTEMQ_MQTT_PASSWORD
    options.mqtt = compact({
      brokers: brokers.map((url) => (username !== undefined || password !== undefined ? compact({ url, username, password }) : url)),
      mode: read.oneOf('ROUTEMQ_MQTT_MODE', ['auto', 'failover', 'all']),
      strategy: read.text('ROUTEMQ_MQTT_STRATEGY'),
      region: read.text('ROUTEMQ_MQTT_REGION'),
      clientId: read.text('ROUTEMQ_MQTT_CLIENT_ID'),
      clean: read.boolean('ROUTEMQ_MQTT_CLEAN'),
      protocolVersion: read.oneOf('ROUTEMQ_MQTT_PROTOCOL_VERSION', ['4', '5']) === undefined ? undefined : Number(env.ROUTEMQ_MQTT_PROTOCOL_VERSION!.trim()),
      connectTimeoutMs: read.number('ROUTEMQ_MQTT_CONNECT_TIMEOUT_MS'),
      startTimeoutMs: read.number('ROUTEMQ_MQTT_START_TIMEOUT_MS'),
    })
  } else {
    read.none('ROUTEMQ_MQTT_BROKERS', ['ROUTEMQ_MQTT_MODE', 'ROUTEMQ_MQTT_STRATEGY', 'ROUTEMQ_MQTT_REGION', 'ROUTEMQ_MQTT_CLIENT_ID', 'ROUTEMQ_MQTT_CLEAN', 'ROUTEMQ_MQTT_USERNAME', 'ROUTEMQ_MQTT_PASSWORD', 'ROUTEMQ_MQTT_PROTOCOL_VERSION', 'ROUTEMQ_MQTT_CONNECT_TIMEOUT_MS', 'ROUTEMQ_MQTT_START_TIMEOUT_MS'])
  }

  const primary = read.list('ROUTEMQ_DATABASE_URL')
  if (primary) {
    const replicaUrls = read.list('ROUTEMQ_DATABASE_REPLICA_URLS') ?? []
    const regions = env.ROUTEMQ_DATABASE_REPLICA_REGIONS === undefined ? undefined : env.ROUTEMQ_DATABASE_REPLICA_REGIONS.split(',').map((r) => r.trim())
    if (regions && regions.length !== replicaUrls.length) {
      throw new InvalidOptionError('ROUTEMQ_DATABASE_REPLICA_REGIONS', `has ${regions.length} entries for ${replicaUrls.length} replica URLs; give one per replica, empty for none`)
    }
    const replicas = replicaUrls.map((url, i): string | PgServerConfig => (regions?.[i] ? { url, region: regions[i] } : url))
    options.database = compact({
      primary: primary.length === 1 ? primary[0] : primary,
      replicas,
      region: read.text('ROUTEMQ_DATABASE_REGION'),
      strategy: read.text('ROUTEMQ_DATABASE_STRATEGY'),
      maxLagMs: read.number('ROUTEMQ_DATABASE_MAX_LAG_MS'),
      maxLagBytes: read.number('ROUTEMQ_DATABASE_MAX_LAG_BYTES'),
      consistency: read.oneOf('ROUTEMQ_DATABASE_CONSISTENCY', ['lsn', 'window', 'off']) === undefined ? undefined : { mode: env.ROUTEMQ_DATABASE_CONSISTENCY!.trim() },
      queryTimeoutMs: read.number('ROUTEMQ_DATABASE_QUERY_TIMEOUT_MS'),
      poolSize: read.number('ROUTEMQ_DATABASE_POOL_SIZE'),
      fallbackToPrimary: read.boolean('ROUTEMQ_DATABASE_FALLBACK_TO_PRIMARY'),
      migrate: read.boolean('ROUTEMQ_DATABASE_MIGRATE'),
    })
  } else {
    read.none('ROUTEMQ_DATABASE_URL', ENV_VARIABLES.map((v) => v.name).filter((n) => n.startsWith('ROUTEMQ_DATABASE_') && n !== 'ROUTEMQ_DATABASE_URL'))
  }

  const database = read.text('ROUTEMQ_GEOIP_DATABASE')
  if (database) {
    const file = read.text('ROUTEMQ_GEOIP_RULES_FILE')
    const fromFile = file === undefined ? {} : rulesFile(file)
    options.geo = compact({
      ...fromFile,
      database,
      defaultRegion: read.text('ROUTEMQ_GEOIP_DEFAULT_REGION') ?? fromFile.defaultRegion,
      cacheSize: read.number('ROUTEMQ_GEOIP_CACHE_SIZE'),
    })
  } else {
    read.none('ROUTEMQ_GEOIP_DATABASE', ['ROUTEMQ_GEOIP_RULES_FILE', 'ROUTEMQ_GEOIP_DEFAULT_REGION', 'ROUTEMQ_GEOIP_CACHE_SIZE'])
  }

  if (read.boolean('ROUTEMQ_HEALTH_ENABLED') === false) {
    options.health = false
    read.none('ROUTEMQ_HEALTH_ENABLED=true', ['ROUTEMQ_HEALTH_HOST', 'ROUTEMQ_HEALTH_PORT', 'ROUTEMQ_HEALTH_DRAIN_DELAY_MS', 'ROUTEMQ_STATUS_PAGE_ENABLED'])
  } else {
    const host = read.text('ROUTEMQ_HEALTH_HOST')
    const port = read.number('ROUTEMQ_HEALTH_PORT')
    const drainDelayMs = read.number('ROUTEMQ_HEALTH_DRAIN_DELAY_MS')
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new InvalidOptionError('ROUTEMQ_HEALTH_PORT', `must be a port number from 0 to 65535, not "${env.ROUTEMQ_HEALTH_PORT!.trim()}"`)
    options.health = compact({
      http: host !== undefined || port !== undefined ? compact({ host, port }) : undefined,
      shutdown: drainDelayMs !== undefined ? { drainDelayMs } : undefined,
      statusPage: read.boolean('ROUTEMQ_STATUS_PAGE_ENABLED') === false ? false : undefined,
    })
  }
  if (read.boolean('ROUTEMQ_METRICS_ENABLED') === false) {
    options.metrics = false
    read.none('ROUTEMQ_METRICS_ENABLED=true', ['ROUTEMQ_METRICS_PREFIX'])
  } else if (options.health === false) {
    read.none('ROUTEMQ_HEALTH_ENABLED=true (metrics are served on the health endpoint)', ['ROUTEMQ_METRICS_PREFIX'])
  } else {
    const prefix = read.text('ROUTEMQ_METRICS_PREFIX')
    options.metrics = compact({ prefix })
  }

  if (read.text('ROUTEMQ_LOG_LEVEL') !== undefined || read.text('ROUTEMQ_LOG_FORMAT') !== undefined) options.logger = loggerFromEnv(env)

  try {
    return validateLoadBalancingOptions(mergeOptions(options, overrides))
  } catch (error) {
    if (error instanceof InvalidOptionError && error.field === 'loadBalancing') {
      throw new InvalidOptionError('ROUTEMQ_MQTT_BROKERS', 'set at least one of ROUTEMQ_MQTT_BROKERS, ROUTEMQ_DATABASE_URL and ROUTEMQ_GEOIP_DATABASE')
    }
    throw asVariableError(error, env)
  }
}

/**
 * An `InvalidOptionError` about an option the environment set, renamed
 * after its variable, with the value given (URLs without credentials, a
 * password never) and the option it set: `Option "ROUTEMQ_HEALTH_PORT" is
 * invalid: cannot listen on 127.0.0.1:9464 (EADDRINUSE); choose another
 * port; ROUTEMQ_HEALTH_PORT is "9464" (health.http.port)`. Any other error
 * is returned as it is; one about an option no variable set is named after the variable
 * that would set it. Errors of a start (a port taken) go through it too.
 */
export function asVariableError(error: unknown, env: Env): unknown {
  if (!(error instanceof InvalidOptionError) || error.field.startsWith('ROUTEMQ_')) return error
  const variable = variableFor(error.field, env)
  // Variables that share one option (the broker list and its credentials): the one set, the list first.
  const set = variable === undefined ? undefined : sharing(variable).find((name) => env[name] !== undefined && env[name] !== '')
  if (set === undefined) return variable === undefined ? error : new InvalidOptionError(variable, `${error.reason}; ${variable} is not set (${error.field})`)
  return new InvalidOptionError(set, `${error.reason}; ${set} is ${shownValue(set, env[set]!)} (${error.field})`)
}

/** The variables setting the same option as `name`, `name` first. */
function sharing(name: string): string[] {
  const option = ENV_VARIABLES.find((variable) => variable.name === name)!.option
  return [name, ...ENV_VARIABLES.filter((variable) => variable.option === option && variable.name !== name).map((variable) => variable.name)]
}

/** A URL without its credentials; one with no scheme as written (the parser's reading, 'localhost://1883', would mislead), unless it holds an '@'. */
function shownUrl(url: string): string {
  if (url.includes('://')) return redactUrl(url)
  // Not a URL (a libpq "host=db password=..." string, say): scrubbed as log lines are.
  return /@|%40/i.test(url) ? '<redacted url>' : scrubSecrets(url)
}

/** A variable's value as an error may quote it: a password never, URLs without their credentials, at most 200 characters. */
function shownValue(name: string, value: string): string {
  if (/PASSWORD|SECRET|TOKEN/.test(name)) return 'set (its value is not shown)'
  const shown = /URL|BROKERS/.test(name) ? value.split(',').map((url) => shownUrl(url.trim())).join(',') : value
  return JSON.stringify(shown.length > 200 ? `${shown.slice(0, 200)}…` : shown)
}

/**
 * A `ConsoleLogger` as `ROUTEMQ_LOG_LEVEL` and `ROUTEMQ_LOG_FORMAT` say
 * (default info, text); a value it does not know fails with
 * `InvalidOptionError` naming the variable. `LoadBalancingModule.fromEnv()`
 * uses one for its parts when either is set; give one to the application
 * too, so that its own lines (a failed handler) look the same.
 *
 * @example
 * const app = Application.create({ router, logger: loggerFromEnv(), modules: [LoadBalancingModule.fromEnv()] })
 */
export function loggerFromEnv(env: Env = process.env): ConsoleLogger {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw new InvalidOptionError('env', 'must be an object of environment variables, such as process.env')
  const read = new Reader(env)
  const level = read.oneOf('ROUTEMQ_LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent']) as LogLevel | undefined
  const format = read.oneOf('ROUTEMQ_LOG_FORMAT', ['text', 'json']) as LogFormat | undefined
  return new ConsoleLogger(compact({ level, format }))
}

/**
 * The `render` settings of the environment (`ROUTEMQ_INFRA_*`), each
 * malformed value failing with the variable's name.
 */
export function infraOptionsFromEnv(env: Env): Record<string, unknown> {
  const read = new Reader(env)
  const listen = compact({ mqtt: read.number('ROUTEMQ_INFRA_MQTT_PORT'), websocket: read.number('ROUTEMQ_INFRA_WEBSOCKET_PORT'), http: read.number('ROUTEMQ_INFRA_HTTP_PORT'), stats: read.number('ROUTEMQ_INFRA_STATS_PORT') })
  const check = compact({
    intervalMs: read.number('ROUTEMQ_INFRA_CHECK_INTERVAL_MS'), fall: read.number('ROUTEMQ_INFRA_CHECK_FALL'), rise: read.number('ROUTEMQ_INFRA_CHECK_RISE'),
    requireSubscriber: read.boolean('ROUTEMQ_INFRA_CHECK_REQUIRE_SUBSCRIBER'),
  })
  const internal = compact({ host: read.text('ROUTEMQ_INFRA_INTERNAL_HOST'), userEnv: read.text('ROUTEMQ_INFRA_INTERNAL_USER_ENV'), passwordEnv: read.text('ROUTEMQ_INFRA_INTERNAL_PASSWORD_ENV') })
  return compact({
    name: read.text('ROUTEMQ_INFRA_NAME'),
    appInstances: read.list('ROUTEMQ_INFRA_APP_INSTANCES'),
    listen: Object.keys(listen).length ? listen : undefined,
    internal: Object.keys(internal).length ? internal : undefined,
    balance: read.oneOf('ROUTEMQ_INFRA_BALANCE', ['leastconn', 'roundrobin']),
    check: Object.keys(check).length ? check : undefined,
    deviceKeepaliveSeconds: read.number('ROUTEMQ_INFRA_DEVICE_KEEPALIVE_SECONDS'),
    proxyProtocol: read.boolean('ROUTEMQ_INFRA_PROXY_PROTOCOL'),
    image: read.text('ROUTEMQ_INFRA_IMAGE'),
    replicas: read.number('ROUTEMQ_INFRA_REPLICAS'),
    ingressHost: read.text('ROUTEMQ_INFRA_INGRESS_HOST'),
  })
}

/** The variable an `infra.*` option path comes from, for render's errors. */
export function variableOfOption(field: string, env: Env = {}): string | undefined {
  return variableFor(field, env)
}

/**
 * The options from the environment with `overrides` merged over them, one
 * level deep: `{ mqtt: { keepaliveSeconds: 30 } }` adds to the broker
 * options the environment gave; `false`, a logger or a list (brokers with
 * their `tls`) replace.
 */
function mergeOptions(base: LoadBalancingOptions, overrides: Partial<LoadBalancingOptions>): LoadBalancingOptions {
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(overrides ?? {})) {
    const current = merged[key]
    const plain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
    merged[key] = plain(current) && plain(value) ? { ...current, ...value } : value
  }
  return merged
}

/** The variable behind an option path: the one whose option is the longest prefix of it. */
function variableFor(field: string, env: Env): string | undefined {
  let best: Variable | undefined
  for (const variable of ENV_VARIABLES) {
    const matches = field === variable.option || field.startsWith(`${variable.option}.`) || field.startsWith(`${variable.option}[`)
    if (matches && (!best || variable.option.length > best.option.length)) best = variable
  }
  // Rules, endpoints and a default region in the file.
  if (best?.option === 'geo') return 'ROUTEMQ_GEOIP_RULES_FILE'
  if (best?.name === 'ROUTEMQ_GEOIP_DEFAULT_REGION' && env.ROUTEMQ_GEOIP_DEFAULT_REGION === undefined && env.ROUTEMQ_GEOIP_RULES_FILE !== undefined) return 'ROUTEMQ_GEOIP_RULES_FILE'
  return best?.name
}

function rulesFile(path: string): { defaultRegion?: string; rules?: unknown; endpoints?: unknown } {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new InvalidOptionError('ROUTEMQ_GEOIP_RULES_FILE', `${path} cannot be read (${code === 'ENOENT' ? 'no such file' : code ?? 'error'})`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new InvalidOptionError('ROUTEMQ_GEOIP_RULES_FILE', `${path} is not JSON (${error instanceof Error ? error.message : String(error)})`)
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new InvalidOptionError('ROUTEMQ_GEOIP_RULES_FILE', `${path} must hold an object { defaultRegion, rules, endpoints }`)
  }
  const { defaultRegion, rules, endpoints, ...rest } = parsed as Record<string, unknown>
  const unknown = Object.keys(rest)
  if (unknown.length > 0) throw new InvalidOptionError('ROUTEMQ_GEOIP_RULES_FILE', `${path}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')}; keys are defaultRegion, rules, endpoints`)
  return compact({ defaultRegion: defaultRegion as string | undefined, rules, endpoints })
}

/** Typed reads of variables, each failing with the variable's name. */
class Reader {
  constructor(readonly env: Env) {}

  text(name: string): string | undefined {
    const value = this.env[name]?.trim()
    return value === undefined || value === '' ? undefined : value
  }

  list(name: string): string[] | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    const items = value.split(',').map((item) => item.trim())
    if (items.some((item) => item === '')) throw new InvalidOptionError(name, 'has an empty entry; separate values with single commas')
    return items
  }

  number(name: string): number | undefined {
    const value = this.text(name)
    if (value === undefined) return undefined
    const number = Number(value)
    if (!/^-?\d+(\.\d+)?$/.test(value) || !Number.isFinite(number)) throw new InvalidOptionError(name, `must be a number, not "${value}"`)
    return number
  }

  boolean(name: string): boolean | undefined {
    const value = this.text(name)?.toLowerCase()
    if (value === undefined) return undefined
    if (['true', '1', 'yes', 'on'].includes(value)) return true
    if (['false', '0', 'no', 'off'].includes(value)) return false
    throw new InvalidOptionError(name, `must be true or false, not "${this.text(name)}"`)
  }

  oneOf(name: string, allowed: readonly string[]): string | undefined {
    const value = this.text(name)
    if (value !== undefined && !allowed.includes(value)) throw new InvalidOptionError(name, `must be one of ${allowed.join(', ')}, not "${value}"`)
    return value
  }

  /** Settings of a part that is off are a mistake: say which variable turns it on. */
  none(missing: string, names: readonly string[]): void {
    const set = names.find((name) => this.text(name) !== undefined)
    if (set) throw new InvalidOptionError(set, `has no effect without ${missing}`)
  }
}

function compact<T extends Record<string, unknown>>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T
}

function closest(name: string): string {
  return closestNames(name, KNOWN).join(', ')
}
