import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Kysely } from 'kysely'
import { connectAsync, type MqttClient } from 'mqtt'
import pg from 'pg'
import {
  Application, LoadBalancingModule, Router, geoGate, geoRegion, healthGate, silentLogger, type LoadBalancingOptions,
} from '../../src/index.js'
import { grafanaDashboard, renderAlertRules } from '../../plugins/infra/index.js'
import { planInfra } from '../../src/composition/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { writeMmdb } from '../support/mmdb-writer.js'
import { pollUntil } from '../support/poll-until.js'
import { parsePrometheusText, type Family } from '../support/prometheus-text.js'
import { ensureDebianPackages, PROMTOOL } from '../support/system-packages.js'

interface Database {
  tooling_readings: { id: string; device: string }
}

/** Runs promtool; its exit status and everything it printed. */
function promtool(args: readonly string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync(PROMTOOL, args, { input, encoding: 'utf8', timeout: 60_000 })
  if (run.error) throw run.error
  return { status: run.status, output: `${run.stdout}${run.stderr}` }
}

/** The metric names a PromQL expression reads: identifiers with the prefix, as a sample's name (with `_bucket` etc.). */
function metricNames(expr: string, prefix: string): string[] {
  return [...expr.matchAll(new RegExp(`\\b${prefix}[a-zA-Z0-9_:]*`, 'g'))].map((match) => match[0])
}

/** Whether a sample name belongs to one of the families (a histogram's `_bucket`, `_sum`, `_count` included). */
function exposed(name: string, families: ReadonlyMap<string, Family>): boolean {
  if (families.has(name)) return true
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1]
  return base !== undefined && ['histogram', 'summary'].includes(families.get(base)?.type ?? '')
}

/** What the render command reads of the module's options (all but `geo`), deployed on a fixed port rather than the test's port 0. */
function plannable({ mqtt, database, metrics }: LoadBalancingOptions) {
  return { mqtt, health: { http: { port: 9464 } }, database, metrics }
}

describe('Prometheus tooling over a live /metrics: promtool, the rendered alert rules and dashboard', function () {
  this.timeout(180_000)
  let topology: Topology
  let dir: string
  let app: Application | undefined
  let device: MqttClient | undefined
  let options: LoadBalancingOptions
  let metricsText: string

  before(async () => {
    ensureDebianPackages({ [PROMTOOL]: 'prometheus' })
    topology = await startTopology({ brokers: 2, replicas: 1 })
    dir = await mkdtemp(join(tmpdir(), 'prometheus-tooling-'))
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('create table tooling_readings (id text primary key, device text not null)')
    await admin.end()
    const geoDatabase = join(dir, 'geo.mmdb')
    await writeFile(geoDatabase, writeMmdb([
      { network: '81.2.69.0/24', data: { continent: { code: 'EU' }, country: { iso_code: 'GB' } } },
      { network: '175.45.176.0/24', data: { continent: { code: 'AS' }, country: { iso_code: 'KP' } } },
    ], { databaseType: 'GeoIP2-City' }))
    options = {
      mqtt: { brokers: topology.brokers.map((b) => b.url), clientId: 'prometheus-tooling' },
      database: { primary: topology.primary!.url, replicas: [topology.replicas[0]!.url], maxLagMs: 5000 },
      geo: { database: geoDatabase, defaultRegion: 'us', rules: [{ region: 'eu', continents: ['EU'] }] },
      health: { http: { host: '127.0.0.1', port: 0 }, shutdown: false },
    }
    const module = LoadBalancingModule.forRoot({ ...options, logger: silentLogger })
    const router = new Router()
    let handled = 0
    let onHandled: (() => void) | undefined
    // Every part of the app measured: pools, a spooled health gate, GeoIP lookups and a geo gate, an error policy.
    router.on('readings/{device}', async (ctx) => {
      const { id } = ctx.payload as { id: string }
      await (module.parts.kysely as Kysely<Database>).insertInto('tooling_readings').values({ id, device: ctx.params.device }).execute()
      handled++
      onHandled?.()
    }, {
      qos: 1,
      middleware: [geoRegion({ ip: { payload: 'ip' } }), geoGate({ deny: { countries: ['KP'] } }), healthGate('primary', { spool: { path: join(dir, 'spool') } })],
    })
    router.on('jobs/{id}', () => {
      throw new Error('this job always fails')
    }, { qos: 1, onError: { deadLetter: 'dead' } })
    app = Application.create({ router, modules: [module], logger: silentLogger })
    await app.start()

    device = await connectAsync(topology.brokers[0]!.url, { clientId: 'prometheus-tooling-device' })
    const done = new Promise<void>((resolve) => (onHandled = () => handled >= 5 && resolve()))
    for (let i = 0; i < 5; i++) await device.publishAsync('readings/d1', JSON.stringify({ id: `r${i}`, ip: '81.2.69.1' }), { qos: 1 })
    await device.publishAsync('readings/d2', JSON.stringify({ id: 'blocked', ip: '175.45.176.1' }), { qos: 1 })
    await device.publishAsync('jobs/1', '{}', { qos: 1 })
    await done
    const url = module.parts.health!.server!.url!
    // Scraped once every message has settled, the failed one dead-lettered last.
    metricsText = await pollUntil(async () => {
      const text = await (await fetch(`${url}/metrics`)).text()
      return /_error_policy_messages_total\{action="dead_lettered"\} 1/.test(text) ? text : undefined
    }, { timeoutMs: 15_000, everyMs: 50 })
  })

  after(async () => {
    await device?.endAsync()
    await app?.stop()
    await topology?.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('promtool check metrics finds no error and no lint problem in /metrics after traffic through every part', () => {
    const families = parsePrometheusText(metricsText)
    for (const name of ['routemq_spool_bytes', 'routemq_geo_gate_blocked_total', 'routemq_pool_backend_latency_p99_seconds', 'routemq_replica_lag_seconds']) {
      assert.ok(families.get(name)?.samples.length, `${name} has samples, so promtool sees its labels`)
    }
    const { status, output } = promtool(['check', 'metrics'], metricsText)
    assert.match(metricsText, /^nodejs_active_handles\{/m, 'the default metrics are there, checked too')
    assert.equal(output, '', 'promtool printed problems')
    assert.equal(status, 0)
  })

  it('renders alert rules that promtool checks and whose unit tests pass', async () => {
    const rulesFile = join(dir, 'prometheus-rules.yaml')
    await writeFile(rulesFile, renderAlertRules(planInfra(plannable(options))))
    const check = promtool(['check', 'rules', rulesFile])
    assert.equal(check.status, 0, check.output)
    assert.match(check.output, /SUCCESS: \d+ rules found/)
    const testFile = join(dir, 'rules-test.yaml')
    // Series as Prometheus would scrape them; `instance` is the label a scrape adds.
    await writeFile(testFile, JSON.stringify({
      rule_files: [rulesFile],
      evaluation_interval: '15s',
      tests: [{
        interval: '15s',
        input_series: [
          { series: 'routemq_pool_backend_up{pool="mqtt",backend="b1:1883",instance="app-1"}', values: '1 0x10' },
          { series: 'routemq_pool_backend_up{pool="mqtt",backend="b2:1883",instance="app-1"}', values: '1 1 0x9' },
          { series: 'routemq_replica_lag_seconds{pool="postgres",backend="r1",instance="app-1"}', values: '1 1 9x10' },
          { series: 'routemq_health_check_up{check="primary",critical="true",instance="app-1"}', values: '1x10' },
        ],
        alert_rule_test: [
          {
            eval_time: '2m', alertname: 'RouteMQAllBrokersDown',
            exp_alerts: [{
              exp_labels: { severity: 'critical', instance: 'app-1' },
              exp_annotations: {
                summary: 'app-1 reaches no broker',
                description: 'Every broker of app-1 is down: it receives nothing and buffers its publishes (see offline_buffer_messages) until one is back.',
              },
            }],
          },
          { eval_time: '1m', alertname: 'RouteMQReplicaLagHigh', exp_alerts: [] },
          {
            eval_time: '2m30s', alertname: 'RouteMQReplicaLagHigh',
            exp_alerts: [{
              exp_labels: { severity: 'warning', instance: 'app-1', pool: 'postgres', backend: 'r1' },
              exp_annotations: {
                summary: 'Replica r1 is 9 s behind the primary',
                description: "Replica r1 is beyond the pool's maxLagMs (5 s), so it gets no reads. Check its replay and the network from the primary.",
              },
            }],
          },
          { eval_time: '2m', alertname: 'RouteMQPrimaryUnreachable', exp_alerts: [] },
        ],
      }],
    }))
    const test = promtool(['test', 'rules', testFile])
    assert.equal(test.status, 0, test.output)
    assert.match(test.output, /SUCCESS/)
  })

  it('renders a dashboard whose every query parses and reads only metrics the live /metrics serves', async () => {
    const families = parsePrometheusText(metricsText)
    const dashboard = grafanaDashboard(planInfra(plannable(options)))
    const exprs = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })))
    assert.ok(exprs.length >= 20, `${exprs.length} queries`)
    const missing = exprs.flatMap(({ panel, expr }) => metricNames(expr, 'routemq_').filter((name) => !exposed(name, families)).map((name) => `${panel}: ${name}`))
    assert.deepEqual(missing, [], 'panels reading metrics /metrics does not serve')
    const charted = new Set(exprs.flatMap(({ expr }) => metricNames(expr, 'routemq_')).map((name) => name.replace(/_(bucket|sum|count)$/, '')))
    const uncharted = [...families.keys()].filter((name) => name.startsWith('routemq_') && !charted.has(name))
    // These are on the dashboard through others (request counts as rates, lag bytes beside lag seconds) or belong to rarer setups.
    assert.deepEqual(uncharted.sort(), ['routemq_mqtt_sessions_adopted_total', 'routemq_offline_buffer_bytes', 'routemq_replica_lag_bytes'].sort(), 'metrics no panel shows')
    // promtool parses PromQL in rule files: each query becomes a recording rule, Grafana's variables given values.
    const rulesFile = join(dir, 'dashboard-queries.yaml')
    await writeFile(rulesFile, JSON.stringify({
      groups: [{
        name: 'dashboard',
        rules: exprs.map(({ expr }, i) => ({ record: `dashboard:query_${i}`, expr: expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*') })),
      }],
    }))
    const check = promtool(['check', 'rules', rulesFile])
    assert.equal(check.status, 0, check.output)
    assert.match(JSON.stringify(dashboard.templating), /"type":"datasource"/, 'the datasource is a template variable')
    assert.ok(dashboard.panels.every((panel) => panel.type === 'row' || (panel.datasource?.uid === '${datasource}')), 'every panel uses it')
  })
})
