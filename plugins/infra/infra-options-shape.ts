import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import { byKind, isBoolean, listOf, matching, milliseconds, nonEmptyString, oneOf, shapeOf, wholeNumber, type OptionCheck, type OptionShape } from '../../src/routemq/plugin-api.js'
import type { InfraOptions } from './infra-plan.js'

type Listen = NonNullable<InfraOptions['listen']>
type Internal = NonNullable<InfraOptions['internal']>
type Check = NonNullable<InfraOptions['check']>

/** Kubernetes names: NGINX upstreams and HAProxy sections take them as given. */
export const INFRA_NAME_PATTERN = /^[a-z]([a-z0-9-]{0,40}[a-z0-9])?$/
// NGINX reads a quoted string with no variables here; `$`, quotes, `\` and `#` are refused so that no path depends on escaping rules.
const PATH = /^[A-Za-z0-9_./@+=,:~%-]+$/
const PATH_DESCRIBED = 'a path of letters, digits and / . _ - @ + = , : ~ % (no spaces, quotes, $, # or ; { })'
// The value is a variable's name; the reason says so, because a secret pasted here is refused without being echoed.
const envName = matching(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable (letters, digits and "_"), e.g. "HAPROXY_STATS_PASSWORD", not the credential itself')
const port = wholeNumber(1, 65_535)
// HAProxy's timers, like Node's, hold at most 2^31 - 1 ms; a longer `inter` fails `haproxy -c`.
/** Most checks in a row for `rise` and `fall`: HAProxy counts a server's health up to rise + fall - 1 in an int, and a thousand is already a broker left down for good. */
export const MAX_CHECK_COUNT = 1_000
const checkCount = wholeNumber(1, MAX_CHECK_COUNT)

const refusedIngress: OptionCheck = (value, field) => {
  if (value !== undefined) {
    throw new InvalidOptionError(
      field,
      "is no longer rendered: the app's only HTTP endpoints are /health, /ready and /metrics, which an Ingress would publish. Remove it; " +
        'devices reach the brokers through the <name>-mqtt Service (make it a LoadBalancer to expose MQTT), and probes and Prometheus use the internal <name>-health Service',
    )
  }
}

const LISTEN_SHAPE: OptionShape<Listen> = { mqtt: port, websocket: port, http: port, stats: port }

// The host's own check (RFC 1123 names and IP addresses, loopback or not) is planInternalListeners'.
const INTERNAL_SHAPE: OptionShape<Internal> = { host: nonEmptyString, userEnv: envName, passwordEnv: envName }

const CHECK_SHAPE: OptionShape<Check> = { intervalMs: milliseconds(1), fall: checkCount, rise: checkCount, requireSubscriber: isBoolean }

/** The keys, types and bounds of `InfraOptions`; what depends on several options (distinct ports, both credentials) is checked by `planInfra`. */
export const INFRA_OPTIONS_SHAPE: OptionShape<InfraOptions> = {
  name: matching(INFRA_NAME_PATTERN, 'a name that starts with a letter and holds lower-case letters, digits and "-", as Kubernetes names do'),
  // Each entry's host and port are checked by planInfra, which splits it.
  appInstances: listOf(nonEmptyString),
  listen: shapeOf(LISTEN_SHAPE),
  internal: shapeOf(INTERNAL_SHAPE),
  balance: oneOf(['leastconn', 'roundrobin']),
  check: shapeOf(CHECK_SHAPE),
  // MQTT's keepalive is a 16-bit number of seconds.
  deviceKeepaliveSeconds: wholeNumber(1, 65_535),
  proxyProtocol: isBoolean,
  image: matching(/^\S+$/, 'a container image reference without spaces, e.g. "registry.example/app:1.2"'),
  // Kubernetes' spec.replicas is an int32.
  replicas: wholeNumber(1, 2_147_483_647),
  ingressHost: refusedIngress,
  nginxStreamModule: byKind(`must be the path of ngx_stream_module.so, ${PATH_DESCRIBED}, or false where the module is built in`, {
    false: true,
    string: matching(PATH, `the path of ngx_stream_module.so, ${PATH_DESCRIBED}`),
  }),
  nginxPid: matching(PATH, PATH_DESCRIBED),
  nginxErrorLog: matching(PATH, PATH_DESCRIBED),
}
