// From the options LoadBalancingModule reads (`mqtt`, `health`) and `infra` to the plan
// plugins/infra renders: resolving the brokers is the MQTT plugin's and the health options
// the composition's, so the plan is made here and the renderers see only the plan.
import { resolveBrokerPoolOptions, type BrokerPoolOptions } from '../../plugins/mqtt/broker-pool-options.js'
import { BROKER_POOL_OPTIONS_SHAPE } from '../../plugins/mqtt/broker-pool-options-shape.js'
import { INFRA_OPTIONS_SHAPE, MAX_CHECK_COUNT } from '../../plugins/infra/infra-options-shape.js'
import type { InfraOptions, InfraPlan } from '../../plugins/infra/infra-plan.js'
import { planInternalListeners } from '../../plugins/infra/internal-listeners.js'
import { bareHost, hostPort, isHostName } from '../host-name.js'
import { InvalidOptionError, withFieldPrefix } from '../routemq/plugin-api.js'
import { byKind, checkOptions, isBoolean, shapeOf, type OptionShape } from '../routemq/plugin-api.js'
import { HEALTH_OPTIONS_SHAPE } from './health-module-options-shape.js'
import type { HealthOptions } from './load-balancing-options.js'
import type { MonitoringPlan } from '../../plugins/infra/monitoring-plan.js'
import { REPLICA_POOL_OPTIONS_SHAPE } from '../../plugins/kysely/replica-pool-options-shape.js'
import { DEFAULT_MAX_LAG_MS, type ReplicaPoolOptions } from '../../plugins/kysely/replica-pool-options.js'
import type { LoadBalancingMetricsOptions } from '../metrics/load-balancing-metrics.js'
import { LOAD_BALANCING_METRICS_OPTIONS_SHAPE } from '../metrics/load-balancing-metrics-options-shape.js'

/** What `planInfra` reads: the module's `mqtt`, `health`, `database` and `metrics` options, and `infra`. */
export interface InfraPlanOptions {
  readonly mqtt?: BrokerPoolOptions
  readonly health?: HealthOptions | false
  /** Read by the dashboard and alert rules only (the replicas' lag limits). */
  readonly database?: ReplicaPoolOptions & { readonly migrate?: boolean }
  /** Read by the dashboard and alert rules only (the metric prefix); `false` refuses them. */
  readonly metrics?: LoadBalancingMetricsOptions | false
  readonly infra?: InfraOptions
}

/** All that `planInfra` reads: the module's `mqtt`, `health`, `database` and `metrics` options, with their own shapes, and `infra`. */
export const INFRA_PLAN_OPTIONS_SHAPE: OptionShape<InfraPlanOptions> = {
  mqtt: shapeOf(BROKER_POOL_OPTIONS_SHAPE),
  health: byKind('must be an object of options, or false (which the balancers refuse: they check /ready)', { false: true, object: shapeOf(HEALTH_OPTIONS_SHAPE) }),
  database: shapeOf({ ...REPLICA_POOL_OPTIONS_SHAPE, migrate: isBoolean }),
  metrics: byKind('must be an object of options, or false (which the dashboard and alert rules refuse)', { false: true, object: shapeOf(LOAD_BALANCING_METRICS_OPTIONS_SHAPE) }),
  infra: shapeOf(INFRA_OPTIONS_SHAPE),
}

/** The topology the demo uses, rendered when no configuration is given. */
export const DEMO_TOPOLOGY: { readonly mqtt: BrokerPoolOptions; readonly health: { readonly http: { readonly host: string; readonly port: number } } } = {
  mqtt: { brokers: ['mqtt://127.0.0.1:1884', 'mqtt://127.0.0.1:1885', 'mqtt://127.0.0.1:1886'] },
  health: { http: { host: '127.0.0.1', port: 9464 } },
}

const HOST_REASON = 'must be a DNS name (letters, digits, "-" and "." as RFC 1123 allows), an IPv4 address or a bracketed IPv6 address'
const port = (value: unknown, field: string, fallback: number): number => {
  const n = value ?? fallback
  if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 65_535) throw new InvalidOptionError(field, 'must be a port number from 1 to 65535')
  return n as number
}

/**
 * The balancer plan from the options the module reads (`mqtt`, `health`)
 * and `infra`: brokers split into plain MQTT and WebSocket ones, app
 * instances, listen ports, check timing. Every key is checked at every
 * depth (`infra.chek`: did you mean `infra.check`?), every value against
 * what the balancers accept; errors name the full path.
 *
 * @example
 * planInfra({ mqtt: { brokers: ['mqtt://b1:1883', 'mqtt://b2:1883'] }, infra: { appInstances: ['app-1:9464'] } })
 */
export function planInfra(options: InfraPlanOptions): InfraPlan {
  // A JSON file's top level may be anything; only an object has keys to check.
  if (typeof options === 'object' && options !== null) checkOptions(options, INFRA_PLAN_OPTIONS_SHAPE, '')
  if (!options?.mqtt) throw new InvalidOptionError('mqtt.brokers', 'the balancers need the brokers: set mqtt.brokers (ROUTEMQ_MQTT_BROKERS)')
  const resolved = withFieldPrefix('mqtt', () => resolveBrokerPoolOptions(options.mqtt!, 'infra'))
  const infra = options.infra ?? {}
  const name = infra.name ?? 'routemq'
  if (options.health === false) throw new InvalidOptionError('health', "the balancers check the app's /ready: turn the health endpoints on (ROUTEMQ_HEALTH_ENABLED)")
  const httpOptions = options.health ? options.health.http : undefined
  if (httpOptions === false) throw new InvalidOptionError('health.http', "the balancers check the app's /ready: give the health server a port")
  const health = httpOptions ?? {}
  const healthPort = port(health.port, 'health.http.port', 9464)
  const anyHost = health.host === undefined || health.host === '0.0.0.0' || health.host === '::'
  if (!anyHost && (typeof health.host !== 'string' || !isHostName(health.host))) throw new InvalidOptionError('health.http.host', HOST_REASON)
  const defaultInstance = hostPort(anyHost ? '127.0.0.1' : health.host, healthPort)
  const appInstances = (infra.appInstances ?? [defaultInstance]).map((entry, i) => {
    const match = typeof entry === 'string' ? /^(.+):(\d+)$/.exec(entry) : null
    if (!match) throw new InvalidOptionError(`infra.appInstances[${i}]`, 'must be host:port, e.g. "app-1:9464" or "[2001:db8::5]:9464"')
    // An IPv6 address needs its brackets here, or its last group would read as the port.
    if (!isHostName(match[1]!) || (match[1]!.includes(':') && !match[1]!.startsWith('['))) throw new InvalidOptionError(`infra.appInstances[${i}]`, `has a host that ${HOST_REASON}, e.g. "app-1:9464" or "[2001:db8::5]:9464"`)
    return { host: bareHost(match[1]!), port: port(Number(match[2]), `infra.appInstances[${i}]`, 0) }
  })
  const internal = planInternalListeners(infra.internal)
  const balance = infra.balance ?? 'leastconn'
  const keepalive = infra.deviceKeepaliveSeconds ?? 60
  const image = infra.image ?? 'routemq-app:latest'
  const serverNames = new Map<string, number>()
  resolved.brokers.forEach((b, i) => {
    if (!isHostName(b.host)) throw new InvalidOptionError(`mqtt.brokers[${i}].url`, `has the host ${JSON.stringify(b.host)}, which ${HOST_REASON}; a balancer config cannot carry it safely`)
    // HAProxy server names: the id with anything outside its name characters replaced; two ids must not become one.
    const serverName = serverNameOf(b.id)
    const other = serverNames.get(serverName)
    if (other !== undefined) throw new InvalidOptionError(`mqtt.brokers[${i}].id`, `becomes the server name "${serverName}" in the balancer configs, as mqtt.brokers[${other}] does; give the brokers ids that differ in letters or digits`)
    serverNames.set(serverName, i)
    if (b.protocol === 'mqtts' || b.protocol === 'wss') {
      throw new InvalidOptionError(`mqtt.brokers[${i}].url`, `${b.protocol}:// brokers are not rendered: the balancers pass MQTT through and check it in plain text; list the brokers' plain listeners, or terminate TLS in front of the balancer`)
    }
  })
  const listenPorts = [infra.listen?.mqtt ?? 1883, infra.listen?.websocket ?? 8083, infra.listen?.http ?? 8080, infra.listen?.stats ?? 8404]
  if (new Set(listenPorts).size !== listenPorts.length) throw new InvalidOptionError('infra.listen', `the balancer's ports must differ: ${listenPorts.join(', ')}`)
  const brokers = resolved.brokers.map((b) => ({ id: serverNameOf(b.id), host: bareHost(b.host), port: b.port, websocket: b.protocol === 'ws' || b.protocol === 'wss' }))
  const checkInterval = infra.check?.intervalMs ?? 2000
  const appReadyMs = Math.ceil(resolved.health.probeIntervalMs * 1.2) + resolved.connectTimeoutMs
  // A check may pass the moment the broker is back; `rise` checks in a row take (rise - 1) intervals more.
  const safeRise = Math.floor(appReadyMs / checkInterval) + 2
  const rise = infra.check?.rise ?? Math.min(MAX_CHECK_COUNT, Math.max(2, safeRise))
  const requireSubscriber = infra.check?.requireSubscriber ?? resolved.protocolVersion === 5
  if (requireSubscriber && resolved.protocolVersion !== 5) {
    throw new InvalidOptionError('infra.check.requireSubscriber', 'needs MQTT 5 (a PUBACK reason code says whether anyone subscribes); set mqtt.protocolVersion to 5 or turn it off')
  }
  const readyTopic = requireSubscriber ? `${resolved.controlTopic}/ready` : undefined
  const warnings: string[] = []
  if ((rise - 1) * checkInterval < appReadyMs) {
    warnings.push(
      `infra.check.rise ${rise} × ${checkInterval} ms admits a returning broker within ${(rise - 1) * checkInterval} ms, before the app may have subscribed there ` +
        `(up to ${appReadyMs} ms): devices sent there meanwhile publish to no subscriber unless the broker persists its sessions. Use rise ${safeRise} or more.`,
    )
  }
  const appEnv: Record<string, string> = {
    ROUTEMQ_MQTT_BROKERS: resolved.brokers.map((b) => b.url).join(','),
    ROUTEMQ_MQTT_MODE: resolved.mode,
    ROUTEMQ_HEALTH_HOST: '0.0.0.0',
    ROUTEMQ_HEALTH_PORT: String(healthPort),
  }
  return {
    name, brokers, appInstances, healthPort,
    listen: {
      mqtt: listenPorts[0]!, websocket: listenPorts[1]!, http: listenPorts[2]!, stats: listenPorts[3]!,
    },
    internal,
    balance,
    check: { intervalMs: checkInterval, fall: infra.check?.fall ?? 3, rise, readyTopic },
    appReadyMs,
    persistentSessions: !resolved.clean,
    warnings,
    idleTimeoutSeconds: Math.ceil(keepalive * 1.5) + 10,
    proxyProtocol: infra.proxyProtocol ?? false,
    image, replicas: infra.replicas ?? 2,
    nginxStreamModule: infra.nginxStreamModule ?? '/usr/lib/nginx/modules/ngx_stream_module.so',
    nginxPid: infra.nginxPid ?? '/run/nginx.pid',
    nginxErrorLog: infra.nginxErrorLog ?? '/var/log/nginx/error.log',
    appEnv,
    monitoring: planMonitoring(options.metrics, options.database),
  }
}

/** A broker id as HAProxy takes a server name: letters, digits and `_ . -`. */
function serverNameOf(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]/g, '_')
}

/**
 * The monitoring part of the plan; `undefined` when metrics are off, which
 * the dashboard and rule renderers refuse (`requireMonitoring`).
 *
 * @example
 * planMonitoring({ prefix: 'fleet_' }, { primary: 'postgres://app@db/app', maxLagMs: 5000 })
 */
function planMonitoring(metrics: LoadBalancingMetricsOptions | false | undefined, database: ReplicaPoolOptions | undefined): MonitoringPlan | undefined {
  if (metrics === false) return undefined
  return {
    metricPrefix: metrics?.prefix ?? 'routemq_',
    database: database && { maxLagSeconds: (database.maxLagMs ?? DEFAULT_MAX_LAG_MS) / 1000, maxLagBytes: database.maxLagBytes },
  }
}
