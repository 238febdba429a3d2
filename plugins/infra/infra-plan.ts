import type { InternalListeners } from './internal-listeners.js'
import type { MonitoringPlan } from './monitoring-plan.js'

/** What the rendered configs put in front of the brokers and the app; every field optional. */
export interface InfraOptions {
  /** Name of the generated objects (HAProxy sections, NGINX upstreams, Kubernetes resources). Default `routemq`. */
  readonly name?: string
  /** App instances' health/API endpoints as `host:port`. Default one, on the health server's host and port. */
  readonly appInstances?: readonly string[]
  /**
   * Where the balancer listens. Defaults: MQTT 1883, MQTT over WebSocket 8083,
   * HTTP 8080, HAProxy stats 8404. MQTT binds every address; HTTP and stats
   * are internal listeners, bound as `internal` says.
   */
  readonly listen?: { readonly mqtt?: number; readonly websocket?: number; readonly http?: number; readonly stats?: number }
  /**
   * The balancer's internal listeners: the app instances' `/health`, `/ready`
   * and `/metrics` (on `listen.http`) and HAProxy's stats page (on
   * `listen.stats`). They bind `host`, default `127.0.0.1`, so that only the
   * balancer's machine reaches them. Any other address needs `userEnv` and
   * `passwordEnv`: the names of the environment variables HAProxy reads the
   * credentials from when it starts; the values never enter the config.
   * NGINX cannot read them, so it keeps these listeners on loopback.
   */
  readonly internal?: { readonly host?: string; readonly userEnv?: string; readonly passwordEnv?: string }
  /** Broker choice for new connections. Default `leastconn`. */
  readonly balance?: 'leastconn' | 'roundrobin'
  /**
   * Active broker checks: interval, failures to mark down, successes to mark
   * up. Default 2000 ms and 3; `rise` defaults to enough checks that a broker
   * coming back is admitted only after the app has had time to subscribe
   * there (see `InfraPlan.appReadyMs`): 3 with the pool's defaults.
   * `requireSubscriber` (default true with MQTT 5, HAProxy only): a broker
   * passes only while a session of the app subscribes to its ready topic
   * (`<controlTopic>/ready`), which the pool subscribes on every
   * connection: a broker that lost the app's subscriptions takes no devices
   * until the app is back on it. Devices cannot connect before an app
   * instance has connected to the brokers once.
   */
  readonly check?: { readonly intervalMs?: number; readonly fall?: number; readonly rise?: number; readonly requireSubscriber?: boolean }
  /** The longest MQTT keepalive of the devices, in seconds: idle timeouts are longer than 1.5 times it. Default 60. */
  readonly deviceKeepaliveSeconds?: number
  /** Send the PROXY protocol to the brokers (they must accept it). Default false. */
  readonly proxyProtocol?: boolean
  /** Kubernetes: the app's container image, and how many instances. Defaults `routemq-app:latest`, 2. */
  readonly image?: string
  readonly replicas?: number
  /**
   * @deprecated Refused: the app serves only its health endpoints over HTTP,
   * which an Ingress would publish. Devices reach the brokers through the
   * `<name>-mqtt` Service.
   */
  readonly ingressHost?: string
  /** NGINX: the stream module to load (Debian/Ubuntu path by default); `false` when it is built in. */
  readonly nginxStreamModule?: string | false
  /** NGINX: pid file and error log of the rendered main config. Defaults `/run/nginx.pid`, `/var/log/nginx/error.log`. */
  readonly nginxPid?: string
  readonly nginxErrorLog?: string
}

/** A broker as the balancers see it. */
export interface PlannedBroker {
  readonly id: string
  readonly host: string
  readonly port: number
  readonly websocket: boolean
}

/** Everything the renderers need, validated, defaults filled in. */
export interface InfraPlan {
  readonly name: string
  readonly brokers: readonly PlannedBroker[]
  readonly appInstances: readonly { readonly host: string; readonly port: number }[]
  readonly healthPort: number
  readonly listen: { readonly mqtt: number; readonly websocket: number; readonly http: number; readonly stats: number }
  readonly internal: InternalListeners
  readonly balance: 'leastconn' | 'roundrobin'
  readonly check: {
    readonly intervalMs: number
    readonly fall: number
    readonly rise: number
    /** The topic the check publishes to, expecting a subscriber (MQTT 5); `undefined` for a CONNACK-only check. */
    readonly readyTopic: string | undefined
  }
  /**
   * The longest the app takes, once a broker accepts connections again, to
   * be connected and subscribed there: a down broker is probed every
   * 1.2 × `health.probeIntervalMs` at most, then connected within
   * `connectTimeoutMs`. Devices must not reach the broker before that, or
   * what they publish has no subscriber (on brokers without persistence).
   */
  readonly appReadyMs: number
  /** Whether the app keeps persistent sessions: Kubernetes then gets a StatefulSet, whose pod names are stable client ids. */
  readonly persistentSessions: boolean
  /** Settings that leave a window for loss, in words; the CLI prints them and the configs carry them as comments. */
  readonly warnings: readonly string[]
  /** Idle timeout of MQTT connections through the balancer, in seconds (> 1.5 × the device keepalive). */
  readonly idleTimeoutSeconds: number
  readonly proxyProtocol: boolean
  readonly image: string
  readonly replicas: number
  readonly nginxStreamModule: string | false
  readonly nginxPid: string
  readonly nginxErrorLog: string
  /** The app's environment for Kubernetes (no secrets: those come from a Secret). */
  readonly appEnv: Readonly<Record<string, string>>
  /** For the Grafana dashboard and the Prometheus alert rules; `undefined` when metrics are off. */
  readonly monitoring: MonitoringPlan | undefined
}
