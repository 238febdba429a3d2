// The `render` command; `render-bin.ts` runs it. The composition root's because it reads
// ROUTEMQ_* variables and options files into the plan that plugins/infra renders. Nothing here runs on import: the package's index exports runCli.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseEnv } from 'node:util'
import { infraOptionsFromEnv, loadBalancingOptionsFromEnv, variableOfOption } from './env-options.js'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import { checkEnvFileLines } from '../../plugins/infra/env-file-lines.js'
import type { InfraPlan } from '../../plugins/infra/infra-plan.js'
import { DEMO_TOPOLOGY, planInfra } from './plan-infra.js'
import { renderHaproxy } from '../../plugins/infra/render-haproxy.js'
import { renderKubernetes } from '../../plugins/infra/render-kubernetes.js'
import { renderNginx } from '../../plugins/infra/render-nginx.js'
import { renderAlertRules } from '../../plugins/infra/render-alerts.js'
import { renderGrafanaDashboard } from '../../plugins/infra/render-grafana.js'

const HELP = `Usage: routemq-load-balancing render <haproxy|nginx|kubernetes|grafana|alerts> [--env-file FILE | --config FILE] [--out DIR]

Renders a balancer configuration, a dashboard or alert rules from the settings LoadBalancingModule reads:
  haproxy     haproxy.cfg: MQTT with an MQTT CONNECT/CONNACK health check, client-id
              stickiness; the app's HTTP endpoints checked on /ready and a stats page,
              both on 127.0.0.1 unless ROUTEMQ_INFRA_INTERNAL_HOST (with credentials) says
  nginx       nginx.conf (a complete main configuration): stream upstreams for MQTT and
              MQTT over WebSocket, an http upstream for the app on 127.0.0.1
  kubernetes  kubernetes.yaml: ConfigMap, StatefulSet or Deployment with /health and /ready
              probes, an internal Service for the health port, a Service for MQTT
  grafana     grafana-dashboard.json: messages, gates, spools, brokers, database servers and
              replica lag, health; the Prometheus datasource is a template variable
  alerts      prometheus-rules.yaml: alert rules (brokers down, primary unreachable, replica
              lag over database.maxLagMs, messages failing, gates holding, spools filling)

Options:
  --env-file FILE  a .env file with ROUTEMQ_* variables (ROUTEMQ_MQTT_BROKERS, ROUTEMQ_HEALTH_PORT,
                   ROUTEMQ_INFRA_*; see the README's table). --env FILE is the same (Node 20 itself
                   also reads --env-file, and exits 9 when the file is missing)
  --config FILE    a JSON file { mqtt, health, database, metrics, infra } (LoadBalancingModule's
                   options plus infra; database and metrics are read by grafana and alerts)
  --out DIR        write the file into DIR instead of printing it
  --help           this text

With neither --env-file nor --config it renders for the demo's topology (3 brokers on 127.0.0.1).`

const FILES = { haproxy: 'haproxy.cfg', nginx: 'nginx.conf', kubernetes: 'kubernetes.yaml', grafana: 'grafana-dashboard.json', alerts: 'prometheus-rules.yaml' } as const
type Target = keyof typeof FILES

/** Runs the command; returns the exit code (0 ok, 1 bad configuration, 2 bad usage). */
export async function runCli(args: readonly string[], out: (text: string) => void = (t) => process.stdout.write(t), err: (text: string) => void = (t) => process.stderr.write(t)): Promise<number> {
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    out(`${HELP}\n`)
    return args.length === 0 ? 2 : 0
  }
  const [command, target, ...rest] = args
  if (command !== 'render' || !target || !(target in FILES)) {
    err(`Unknown command: ${args.join(' ')}\n\n${HELP}\n`)
    return 2
  }
  const flags = new Map<string, string>()
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!
    const value = rest[i + 1]
    if (!['--env-file', '--env', '--config', '--out'].includes(flag) || value === undefined || value.startsWith('--')) {
      err(`Unknown or incomplete option: ${flag}\n\n${HELP}\n`)
      return 2
    }
    flags.set(flag === '--env' ? '--env-file' : flag, value)
  }
  if (flags.has('--env-file') && flags.has('--config')) {
    err('Give --env-file or --config, not both.\n')
    return 2
  }
  let text: string
  let env: Record<string, string> | undefined
  try {
    env = flags.has('--env-file') ? await readEnvFile(flags.get('--env-file')!) : undefined
    const plan = await planFrom(flags, env)
    for (const warning of plan.warnings) err(`warning: ${warning}\n`)
    text = render(target as Target, plan)
  } catch (error) {
    if (error instanceof InvalidOptionError) {
      err(`${(env ? byVariable(error, env) : error).message}\n`)
      return 1
    }
    throw error
  }
  const dir = flags.get('--out')
  if (dir === undefined) {
    out(text)
    return 0
  }
  const path = join(resolve(dir), FILES[target as Target])
  try {
    await mkdir(dir, { recursive: true })
    await writeFile(path, text)
  } catch (error) {
    err(`Cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}\n`)
    return 1
  }
  out(`wrote ${path}\n`)
  return 0
}

function render(target: Target, plan: InfraPlan): string {
  if (target === 'haproxy') return renderHaproxy(plan)
  if (target === 'nginx') return renderNginx(plan)
  if (target === 'grafana') return renderGrafanaDashboard(plan)
  if (target === 'alerts') return renderAlertRules(plan)
  return renderKubernetes(plan)
}

async function planFrom(flags: ReadonlyMap<string, string>, env: Record<string, string> | undefined): Promise<InfraPlan> {
  const configFile = flags.get('--config')
  if (env !== undefined) {
    const options = loadBalancingOptionsFromEnv(env)
    return planInfra({ mqtt: options.mqtt, health: options.health, database: options.database, metrics: options.metrics, infra: infraOptionsFromEnv(env) })
  }
  if (configFile !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(await readText(configFile, '--config'))
    } catch (error) {
      if (error instanceof InvalidOptionError) throw error
      throw new InvalidOptionError('--config', `${configFile} is not JSON (${error instanceof Error ? error.message : String(error)})`)
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidOptionError('--config', `${configFile} must hold an object { mqtt, health, database, metrics, infra }`)
    // planInfra checks every key and value of the file, at every depth.
    return planInfra(parsed)
  }
  return planInfra(DEMO_TOPOLOGY)
}

/** The error with the variable behind its option as its field, for an --env-file (rendering refuses some options too). */
function byVariable(error: InvalidOptionError, env: Record<string, string>): InvalidOptionError {
  const variable = variableOfOption(error.field, env)
  return variable && variable !== error.field ? new InvalidOptionError(variable, `${error.reason} (${error.field})`) : error
}

async function readEnvFile(path: string): Promise<Record<string, string>> {
  const text = await readText(path, '--env-file')
  checkEnvFileLines(text, path)
  return parseEnv(text) as Record<string, string>
}

async function readText(path: string, flag: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    throw new InvalidOptionError(flag, `${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`)
  }
}
