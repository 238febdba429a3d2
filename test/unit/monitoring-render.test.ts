import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InvalidOptionError } from '../../src/index.js'
import { alertRules, grafanaDashboard, renderAlertRules, renderGrafanaDashboard, renderHaproxy } from '../../plugins/infra/index.js'
import { planInfra, runCli, type InfraPlanOptions } from '../../src/composition/index.js'
import { parseYamlDocuments } from '../support/yaml-subset.js'

const mqtt = { brokers: ['mqtt://b1:1883', 'mqtt://b2:1883'] }
const database = { primary: 'postgres://app:s3cret@db-1:5432/app', replicas: ['postgres://app:s3cret@db-2:5432/app'], maxLagMs: 5000 }

function exprs(options: InfraPlanOptions): string[] {
  const plan = planInfra(options)
  return [...alertRules(plan).map((rule) => rule.expr), ...grafanaDashboard(plan).panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr))]
}

describe('the Grafana dashboard and the Prometheus alert rules', () => {
  it('read the metric prefix the app uses', () => {
    const all = exprs({ mqtt, database, metrics: { prefix: 'fleet_' } })
    assert.ok(all.length > 30)
    assert.ok(all.every((expr) => /\bfleet_/.test(expr) && !/\broutemq_/.test(expr)), all.find((expr) => !/\bfleet_/.test(expr) || /\broutemq_/.test(expr)))
    assert.ok(exprs({ mqtt, database }).every((expr) => /\broutemq_/.test(expr)), 'routemq_ by default')
  })

  it("alert on replicas past the pool's lag limits, and leave the database out when there is none", () => {
    const withDatabase = alertRules(planInfra({ mqtt, database: { ...database, maxLagBytes: 1_048_576 } }))
    assert.equal(withDatabase.find((rule) => rule.alert === 'RouteMQReplicaLagHigh')?.expr, 'routemq_replica_lag_seconds > 5')
    assert.equal(withDatabase.find((rule) => rule.alert === 'RouteMQReplicaLagBytesHigh')?.expr, 'routemq_replica_lag_bytes > 1048576')
    const defaults = alertRules(planInfra({ mqtt, database: { primary: 'postgres://app@db-1/app' } }))
    assert.equal(defaults.find((rule) => rule.alert === 'RouteMQReplicaLagHigh')?.expr, 'routemq_replica_lag_seconds > 30', "the pool's default maxLagMs")
    assert.equal(defaults.find((rule) => rule.alert === 'RouteMQReplicaLagBytesHigh'), undefined, 'no byte limit, no rule')
    const brokersOnly = alertRules(planInfra({ mqtt }))
    assert.deepEqual(brokersOnly.filter((rule) => /Primary|Database|Replica/.test(rule.alert)), [])
    assert.ok(brokersOnly.some((rule) => rule.alert === 'RouteMQAllBrokersDown'))
    const dashboard = grafanaDashboard(planInfra({ mqtt, database }))
    const lag = dashboard.panels.find((panel) => panel.title === 'Replica lag')
    assert.match(JSON.stringify(lag?.fieldConfig), /"color":"red","value":5\}/, 'a red line at maxLagMs')
    assert.equal(grafanaDashboard(planInfra({ mqtt })).panels.some((panel) => panel.title === 'Database'), false)
  })

  it('write rules with a severity, a duration and annotations, as YAML that reads back the same', () => {
    const plan = planInfra({ mqtt, database })
    const [document] = parseYamlDocuments(renderAlertRules(plan).replace(/^#.*\n/gm, '')) as [{ groups: { name: string; rules: unknown[] }[] }]
    assert.equal(document.groups[0]!.name, 'routemq-load-balancing')
    assert.deepEqual(document.groups[0]!.rules, alertRules(plan).map((rule) => ({ ...rule })))
    for (const rule of alertRules(plan)) {
      assert.ok(['critical', 'warning'].includes(rule.labels.severity), rule.alert)
      assert.match(rule.for, /^\d+[sm]$/, rule.alert)
      assert.ok(rule.annotations.summary && rule.annotations.description, rule.alert)
    }
    assert.equal(new Set(alertRules(plan).map((rule) => rule.alert)).size, alertRules(plan).length, 'alert names are unique')
  })

  it('lay the dashboard out without overlaps, every panel on the datasource variable, no secret anywhere', () => {
    const text = renderGrafanaDashboard(planInfra({ mqtt, database }))
    assert.doesNotMatch(text, /s3cret|db-1|db-2/)
    assert.doesNotMatch(renderAlertRules(planInfra({ mqtt, database })), /s3cret|db-1|db-2/)
    const dashboard = JSON.parse(text) as ReturnType<typeof grafanaDashboard>
    const cells = new Set<string>()
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos
      assert.ok(x + w <= 24, panel.title)
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${column},${row}`
          assert.ok(!cells.has(cell), `${panel.title} overlaps another panel at ${cell}`)
          cells.add(cell)
        }
      }
      if (panel.type !== 'row') assert.deepEqual(panel.datasource, { type: 'prometheus', uid: '${datasource}' }, panel.title)
    }
    assert.equal(new Set(dashboard.panels.map((panel) => panel.id)).size, dashboard.panels.length, 'panel ids are unique')
  })

  it('are refused with metrics off, naming the field, while the balancer configs still render', () => {
    const plan = planInfra({ mqtt, metrics: false })
    assert.ok(renderHaproxy(plan).length > 0)
    for (const render of [renderAlertRules, renderGrafanaDashboard]) {
      assert.throws(() => render(plan), (e: unknown) => e instanceof InvalidOptionError && e.field === 'metrics' && /leave out metrics: false/.test(e.message))
    }
    assert.throws(() => planInfra({ mqtt, metrics: { prefx: 'a_' } as never }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'metrics.prefx')
    assert.throws(() => planInfra({ mqtt, metrics: { prefix: 'a-b' } }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'metrics.prefix')
    assert.throws(() => planInfra({ mqtt, database: { maxLagMs: 5000 } as never }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'database.primary')
  })

  it('come out of the render command, from an --env-file or a --config, and name the variable that turned metrics off', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'monitoring-render-'))
    try {
      let out = ''
      let err = ''
      const run = (args: string[]) => runCli(args, (t) => (out += t), (t) => (err += t))
      const envFile = join(dir, 'app.env')
      await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_DATABASE_URL=postgres://app:s3cret@db-1/app\nROUTEMQ_DATABASE_MAX_LAG_MS=2500\nROUTEMQ_METRICS_PREFIX=fleet_\n')
      assert.equal(await run(['render', 'alerts', '--env-file', envFile]), 0, err)
      assert.match(out, /expr: "fleet_replica_lag_seconds > 2\.5"/)
      assert.doesNotMatch(out, /s3cret/)
      out = ''
      assert.equal(await run(['render', 'grafana', '--env-file', envFile, '--out', join(dir, 'deploy')]), 0, err)
      assert.match(out, /wrote \S+grafana-dashboard\.json/)
      await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_METRICS_ENABLED=false\n')
      err = ''
      assert.equal(await run(['render', 'alerts', '--env-file', envFile]), 1)
      assert.match(err, /^Option "ROUTEMQ_METRICS_ENABLED" is invalid: is false, and the alert rules read/m)
      const config = join(dir, 'lb.json')
      await writeFile(config, JSON.stringify({ mqtt, metrics: { prefix: 'edge_' } }))
      out = ''
      assert.equal(await run(['render', 'grafana', '--config', config]), 0, err)
      assert.match(out, /edge_messages_total/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
