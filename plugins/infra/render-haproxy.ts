import { hostPort } from '../../src/host-name.js'
import type { InfraPlan } from './infra-plan.js'
import { CONNACK5_ACCEPTED_HEX, CONNACK_ACCEPTED, DISCONNECT, mqtt5PublishPacket, mqttConnectPacket, PUBACK_SUBSCRIBED_HEX } from './mqtt-connect-packet.js'

/**
 * A complete `haproxy.cfg` (HAProxy ≥ 2.4): MQTT over TCP to the brokers with
 * a health check that speaks MQTT (CONNECT, expect a CONNACK accepting it),
 * `leastconn` (or round robin) with client-id stickiness read by HAProxy's
 * MQTT converters, idle timeouts longer than 1.5 × the device keepalive, a
 * WebSocket frontend for brokers listed with `ws://`, an HTTP frontend for
 * the app instances checked on `/ready`, and a stats page. The HTTP frontend
 * and the stats page bind `plan.internal.host` (loopback by default); with
 * credentials, both ask for them, and HAProxy reads them from the named
 * environment variables when it starts (refusing to start without them).
 */
export function renderHaproxy(plan: InfraPlan): string {
  const subscriberCheck = plan.check.readyTopic !== undefined
  const connect = mqttConnectPacket('haproxy-check', 10, subscriberCheck ? 5 : 4).toString('hex')
  const server = (b: { id: string; host: string; port: number }): string =>
    `  server ${b.id} ${hostPort(b.host, b.port)} check${plan.proxyProtocol ? ' send-proxy-v2 check-send-proxy' : ''}`
  const tcp = plan.brokers.filter((b) => !b.websocket)
  const ws = plan.brokers.filter((b) => b.websocket)
  const idle = `${plan.idleTimeoutSeconds}s`
  const lines: string[] = [
    `# Rendered by routemq-load-balancing for ${plan.name}. Brokers are checked with a real MQTT CONNECT/CONNACK;`,
    `# a returning broker is admitted after ${plan.check.rise} good checks, once the app (ready within ${plan.appReadyMs} ms) has subscribed there.`,
    // A line break in a warning would end the comment.
    ...plan.warnings.map((warning) => `# WARNING: ${warning.replace(/\s+/g, ' ')}`),
    ...credentialGuard(plan),
    'global',
    '  log stdout format raw local0',
    '',
    'defaults',
    '  log global',
    '  timeout connect 5s',
    `  timeout client ${idle}`,
    `  timeout server ${idle}`,
    '  timeout check 2s',
    // A device sent to a broker that died before the checks noticed is sent to another one instead of failing.
    '  retries 3',
    '  option redispatch',
    // A name that does not resolve yet (a pod, a container not started) does not stop HAProxy: the server waits in
    // maintenance and is resolved again through the system's resolvers.
    // A broker that refuses a device is marked down at once, not after fall × inter: a broker restarted within that
    // time would otherwise take devices before the app has subscribed there. It comes back after rise good checks.
    `  default-server inter ${plan.check.intervalMs}ms fall ${plan.check.fall} rise ${plan.check.rise} observe layer4 error-limit 1 on-error mark-down init-addr last,libc,none resolvers system`,
    '',
    'resolvers system',
    '  parse-resolv-conf',
    '  hold valid 10s',
    '',
  ]
  const brokerBackend = (backend: string, members: readonly { id: string; host: string; port: number }[], mqttCheck: boolean): void => {
    lines.push(
      `backend ${backend}`,
      '  mode tcp',
      `  balance ${plan.balance}`,
      // A device that reconnects goes back to the broker holding its session, while that broker is up.
      '  tcp-request inspect-delay 5s',
      '  tcp-request content accept if { req.payload(0,0),mqtt_is_valid }',
      `  stick-table type string len 64 size 1m expire ${idle}`,
      '  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)',
    )
    if (mqttCheck) {
      lines.push(
        '  option tcp-check',
        // With the PROXY protocol the check must send its header too, or brokers that require it look dead.
        `  tcp-check connect${plan.proxyProtocol ? ' send-proxy' : ''}`,
        `  tcp-check send-binary ${connect}`,
        ...(subscriberCheck
          ? [
              `  tcp-check expect rbinary ${CONNACK5_ACCEPTED_HEX}`,
              // MQTT 5: a QoS 1 publish to the app's ready topic is acknowledged with reason 0x10 while no session of the
              // app subscribes there (a broker restarted without persistence): out until the app has subscribed again.
              `  tcp-check send-binary ${mqtt5PublishPacket(plan.check.readyTopic).toString('hex')}`,
              `  tcp-check expect rbinary ${PUBACK_SUBSCRIBED_HEX}`,
            ]
          : [`  tcp-check expect rbinary ^${CONNACK_ACCEPTED.toString('hex')}`]),
        `  tcp-check send-binary ${DISCONNECT.toString('hex')}`,
      )
    }
    for (const member of members) lines.push(server(member))
    lines.push('')
  }
  if (tcp.length > 0) {
    lines.push(
      `frontend ${plan.name}_mqtt`,
      `  bind :${plan.listen.mqtt}`,
      '  mode tcp',
      '  option tcplog',
      '  tcp-request inspect-delay 5s',
      '  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }',
      `  default_backend ${plan.name}_brokers`,
      '',
    )
    brokerBackend(`${plan.name}_brokers`, tcp, true)
  }
  if (ws.length > 0) {
    lines.push(
      `frontend ${plan.name}_mqtt_ws`,
      `  bind :${plan.listen.websocket}`,
      '  mode tcp',
      '  option tcplog',
      `  default_backend ${plan.name}_brokers_ws`,
      '',
      `backend ${plan.name}_brokers_ws`,
      '  mode tcp',
      `  balance ${plan.balance}`,
      // A WebSocket listener answers HTTP: checked with a plain connect (an upgrade needs a key per request).
      ...ws.map(server),
      '',
    )
  }
  const auth = authRules(plan)
  if (plan.internal.credentials) {
    lines.push(
      `userlist ${plan.name}_internal`,
      // Expanded by HAProxy from its environment at start: the credentials never enter this file.
      `  user "\${${plan.internal.credentials.userEnv}}" insecure-password "\${${plan.internal.credentials.passwordEnv}}"`,
      '',
    )
  }
  lines.push(
    `frontend ${plan.name}_http`,
    `  bind ${hostPort(plan.internal.host, plan.listen.http)}`,
    '  mode http',
    '  option httplog',
    ...auth,
    // The instances need not see the balancer's credentials.
    ...(auth.length > 0 ? ['  http-request del-header Authorization'] : []),
    `  default_backend ${plan.name}_app`,
    '',
    `backend ${plan.name}_app`,
    '  mode http',
    '  balance roundrobin',
    '  option httpchk GET /ready',
    '  http-check expect status 200',
    // Faster than the brokers' checks: an instance that fails /ready (draining after SIGTERM, 5 s by default) is out in 2 s.
    ...plan.appInstances.map((a, i) => `  server app${i + 1} ${hostPort(a.host, a.port)} check inter 1s fall 2 rise 2`),
    '',
    'listen stats',
    `  bind ${hostPort(plan.internal.host, plan.listen.stats)}`,
    '  mode http',
    ...auth,
    '  stats enable',
    '  stats uri /stats',
    '  stats refresh 5s',
    '',
  )
  return lines.join('\n')
}

/** Stops HAProxy at start when a credential variable is missing: `"${NAME}"` would otherwise expand to nothing. */
function credentialGuard(plan: InfraPlan): string[] {
  const credentials = plan.internal.credentials
  if (!credentials) return []
  return [credentials.userEnv, credentials.passwordEnv].flatMap((name) => [
    `.if !defined(${name})`,
    `  .alert "set ${name} in HAProxy's environment: it holds a credential of the stats page and the app's HTTP endpoints"`,
    '.endif',
  ])
}

/** Basic authentication against the userlist; an empty password (a variable set to nothing) never passes. */
function authRules(plan: InfraPlan): string[] {
  if (!plan.internal.credentials) return []
  return [`  http-request auth realm ${plan.name} if !{ http_auth(${plan.name}_internal) } || { http_auth_pass -m len 0 }`]
}
