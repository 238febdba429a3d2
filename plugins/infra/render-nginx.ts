import { hostPort } from '../../src/host-name.js'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'
import type { InfraPlan } from './infra-plan.js'

/**
 * A complete NGINX main configuration (`nginx.conf`): `stream` upstreams for
 * MQTT and MQTT over WebSocket (least connections, passive failure
 * detection, idle timeouts longer than 1.5 × the device keepalive, the
 * PROXY protocol only when asked; no transparent bind, which needs root and
 * policy routing), and an `http` upstream for the app instances with
 * WebSocket upgrade headers, listening on `plan.internal.host` (loopback:
 * NGINX cannot read credentials from the environment, so another address is
 * refused). Open-source NGINX has no active health checks: a broker is
 * skipped after `fall` failed connects for the check interval. Paths are
 * written quoted.
 */
export function renderNginx(plan: InfraPlan): string {
  if (!plan.internal.loopback) {
    throw new InvalidOptionError(
      'infra.internal.host',
      `NGINX cannot read credentials from the environment, so it does not serve the app's /metrics and /ready on ${plan.internal.host}: ` +
        'leave infra.internal.host at 127.0.0.1 for NGINX, or render HAProxy, which asks for the credentials infra.internal names',
    )
  }
  const balance = plan.balance === 'leastconn' ? '    least_conn;' : undefined
  // NGINX retries a failed broker with a real client after fail_timeout: at least the time the app needs to subscribe there.
  const failTimeout = `${Math.max(1, Math.round((plan.check.intervalMs * plan.check.fall) / 1000), Math.ceil(plan.appReadyMs / 1000))}s`
  const upstream = (name: string, members: readonly { host: string; port: number }[]): string[] => [
    `  upstream ${name} {`,
    ...(balance ? [balance] : []),
    ...members.map((m) => `    server ${hostPort(m.host, m.port)} max_fails=${plan.check.fall} fail_timeout=${failTimeout};`),
    '  }',
  ]
  const proxy = (listen: number, name: string): string[] => [
    '  server {',
    `    listen ${listen};`,
    `    proxy_pass ${name};`,
    '    proxy_connect_timeout 5s;',
    `    proxy_timeout ${plan.idleTimeoutSeconds}s;`,
    ...(plan.proxyProtocol ? ['    proxy_protocol on;'] : []),
    '  }',
  ]
  const tcp = plan.brokers.filter((b) => !b.websocket)
  const ws = plan.brokers.filter((b) => b.websocket)
  const lines = [
    `# Rendered by routemq-load-balancing for ${plan.name}.`,
    '# Open-source NGINX has no active checks: it tries a failed broker again with a device connection after fail_timeout,',
    '# which may reach a restarted broker before the app has subscribed there. Give the brokers persistence (see the README).',
    ...(plan.nginxStreamModule ? [`load_module ${quoted(plan.nginxStreamModule)};`] : []),
    'worker_processes auto;',
    `pid ${quoted(plan.nginxPid)};`,
    `error_log ${quoted(plan.nginxErrorLog)} warn;`,
    '',
    'events {',
    '  worker_connections 10240;',
    '}',
    '',
    'stream {',
    ...(tcp.length > 0 ? [...upstream(`${plan.name}_brokers`, tcp), ...proxy(plan.listen.mqtt, `${plan.name}_brokers`)] : []),
    ...(ws.length > 0 ? [...upstream(`${plan.name}_brokers_ws`, ws), ...proxy(plan.listen.websocket, `${plan.name}_brokers_ws`)] : []),
    '}',
    '',
    'http {',
    '  access_log off;',
    '  map $http_upgrade $connection_upgrade {',
    '    default upgrade;',
    "    '' close;",
    '  }',
    ...upstream(`${plan.name}_app`, plan.appInstances).filter((line) => line !== balance),
    '  server {',
    `    listen ${hostPort(plan.internal.host, plan.listen.http)};`,
    '    location / {',
    `      proxy_pass http://${plan.name}_app;`,
    '      proxy_http_version 1.1;',
    '      proxy_set_header Upgrade $http_upgrade;',
    '      proxy_set_header Connection $connection_upgrade;',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    `      proxy_read_timeout ${plan.idleTimeoutSeconds}s;`,
    '    }',
    '  }',
    '}',
    '',
  ]
  return lines.join('\n')
}

/** An NGINX string argument in double quotes, backslashes and quotes escaped (the plan refuses `$`, which some directives expand even in quotes). */
function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}
