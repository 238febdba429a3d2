import type { InfraPlan } from './infra-plan.js'
import { requireMonitoring } from './monitoring-plan.js'

/** One query of a panel. */
export interface DashboardTarget {
  readonly refId: string
  readonly expr: string
  readonly legendFormat: string
}

/** A panel as the renderer writes it (Grafana reads many more fields; these are the ones set). */
export interface DashboardPanel {
  readonly id: number
  readonly type: 'row' | 'timeseries' | 'stat' | 'state-timeline'
  readonly title: string
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number }
  readonly description?: string
  readonly datasource?: { readonly type: 'prometheus'; readonly uid: string }
  readonly targets?: readonly DashboardTarget[]
  readonly fieldConfig?: unknown
  readonly options?: unknown
  readonly collapsed?: boolean
}

/** The dashboard's JSON model. */
export interface Dashboard {
  readonly title: string
  readonly uid: string
  readonly panels: readonly DashboardPanel[]
  readonly [key: string]: unknown
}

interface PanelSpec {
  readonly title: string
  readonly description: string
  readonly unit: string
  readonly queries: readonly (readonly [expr: string, legend: string])[]
  readonly type?: 'timeseries' | 'stat' | 'state-timeline'
  /** A red line at this value. */
  readonly threshold?: number
  readonly max?: number
}

const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const
const RATE = '$__rate_interval'

/**
 * A Grafana dashboard over the app's metrics (`grafana-dashboard.json`, to
 * import or provision): messages by outcome, gates and spools; broker state,
 * failovers, publish latency and drops; database servers, replica lag against
 * the pool's `maxLagMs`, query latency quantiles; health checks and score;
 * GeoIP. The Prometheus datasource and the instances are template variables.
 *
 * @example
 * await writeFile('grafana-dashboard.json', renderGrafanaDashboard(planInfra(options)))
 */
export function renderGrafanaDashboard(plan: InfraPlan): string {
  return JSON.stringify(grafanaDashboard(plan), null, 2) + '\n'
}

/** The same dashboard as an object. */
export function grafanaDashboard(plan: InfraPlan): Dashboard {
  const { metricPrefix: p, database } = requireMonitoring(plan.monitoring, 'the Grafana dashboard')
  // Every series of the app's instances the variable selects.
  const m = (name: string, labels = ''): string => `${p}${name}{instance=~"$instance"${labels ? `,${labels}` : ''}}`
  const sections: [string, PanelSpec[]][] = [
    ['Messages', [
      { title: 'Messages by outcome', unit: 'cps', description: 'Inbound messages per second by how they ended (the outcomes exclude each other), and all received.',
        queries: [[`sum by (outcome) (rate(${m('messages_total')}[${RATE}]))`, '{{outcome}}'], [`sum(rate(${m('messages_received_total')}[${RATE}]))`, 'received']] },
      { title: 'In flight and held', unit: 'short', description: 'Messages accepted and not yet settled, and those health gates hold while a dependency is down.',
        queries: [[`sum(${m('messages_in_flight')})`, 'in flight'], [`sum by (gate) (${m('held_messages')})`, 'held by {{gate}}']] },
      { title: 'Error policy', unit: 'cps', description: 'Failed or malformed messages dead-lettered, refused as dead letters, or withheld for redelivery.',
        queries: [[`sum by (action) (rate(${m('error_policy_messages_total')}[${RATE}]))`, '{{action}}']] },
      { title: 'Gate holds and rejections', unit: 'cps', description: 'Messages health gates started holding, and turned away by reason.',
        queries: [[`sum by (gate) (rate(${m('gate_holds_total')}[${RATE}]))`, 'held by {{gate}}'], [`sum by (gate, reason) (rate(${m('gate_rejections_total')}[${RATE}]))`, '{{gate}} rejected: {{reason}}']] },
    ]],
    ['Brokers', [
      { title: 'Broker state', type: 'state-timeline', unit: 'none', description: '1 while a broker is healthy for the instance, 0 while it is out.',
        queries: [[m('pool_backend_up', 'pool="mqtt"'), '{{instance}} {{backend}}']] },
      { title: 'Failovers', unit: 'short', description: 'Moves to another backend after a failure, per pool.',
        queries: [[`sum by (pool) (increase(${m('pool_failovers_total')}[${RATE}]))`, '{{pool}}']] },
      { title: 'Publish latency', unit: 's', description: 'Publish to acknowledgement, 50th and 99th percentiles per broker.',
        queries: [0.5, 0.99].map((q) => [`histogram_quantile(${q}, sum by (le, backend) (rate(${m('pool_request_duration_seconds_bucket', 'pool="mqtt"')}[${RATE}])))`, `p${q * 100} {{backend}}`] as const) },
      { title: 'Offline buffer and broker drops', unit: 'short', description: 'Publishes not yet acknowledged by a broker, and messages brokers report they dropped after accepting them.',
        queries: [[`sum by (instance) (${m('offline_buffer_messages')})`, 'buffered {{instance}}'], [`sum by (backend) (increase(${m('pool_backend_dropped_messages_total')}[${RATE}]))`, 'dropped by {{backend}}']] },
    ]],
    ...(database
      ? [['Database', [
          { title: 'Database servers', type: 'state-timeline', unit: 'none', description: '1 while a primary or replica takes queries (a replica also within the lag limits).',
            queries: [[m('pool_backend_up', 'pool="postgres"'), '{{instance}} {{backend}}']] },
          { title: 'Replica lag', unit: 's', threshold: database.maxLagSeconds, description: `How far each replica is behind the primary; the red line is maxLagMs (${database.maxLagSeconds} s), beyond which it gets no reads.`,
            queries: [[`max by (backend) (${m('replica_lag_seconds')})`, '{{backend}}']] },
          { title: 'Query latency', unit: 's', description: 'Median and 99th percentile of the last 1024 queries on each server, as the pool measures them for routing.',
            queries: [[`max by (backend) (${m('pool_backend_latency_p50_seconds')})`, 'p50 {{backend}}'], [`max by (backend) (${m('pool_backend_latency_p99_seconds')})`, 'p99 {{backend}}']] },
          { title: 'Queries and failures', unit: 'reqps', description: 'Statements per second on each server, and those that failed.',
            queries: [[`sum by (backend) (rate(${m('pool_requests_total', 'pool="postgres"')}[${RATE}]))`, '{{backend}}'], [`sum by (backend) (rate(${m('pool_request_failures_total', 'pool="postgres"')}[${RATE}]))`, 'failed {{backend}}']] },
        ]] as [string, PanelSpec[]]]
      : []),
    ['Spool', [
      { title: 'Spool fill', unit: 'percentunit', max: 1, threshold: 0.8, description: 'Bytes in each gate spool over its maxBytes.',
        queries: [[`max by (gate) (${m('spool_bytes')} / ${m('spool_max_bytes')})`, '{{gate}}']] },
      { title: 'Spooled and replayed', unit: 'cps', description: 'Messages written to the spool and handled again from it; those that waited for room.',
        queries: [[`sum by (gate) (rate(${m('spooled_messages_total')}[${RATE}]))`, 'spooled {{gate}}'], [`sum by (gate) (rate(${m('spool_replayed_total')}[${RATE}]))`, 'replayed {{gate}}'], [`sum by (gate) (rate(${m('spool_full_waits_total')}[${RATE}]))`, 'waited for room {{gate}}']] },
      { title: 'Spool backlog', unit: 'short', description: 'Messages in the spool and waiting for room in it.',
        queries: [[`sum by (gate) (${m('spool_messages')})`, 'spooled {{gate}}'], [`sum by (gate) (${m('spool_waiting_for_room')})`, 'waiting {{gate}}']] },
      { title: 'Oldest spooled message', unit: 's', description: 'Age of the oldest message in each spool.',
        queries: [[`max by (gate) (${m('spool_oldest_age_seconds')})`, '{{gate}}']] },
    ]],
    ['Health', [
      { title: 'Health score', type: 'stat', unit: 'percentunit', max: 1, description: 'Share of pool requests that succeeded over the last minute, less penalties for slowness and failovers.',
        queries: [[m('health_score'), '{{instance}}']] },
      { title: 'Health checks', type: 'state-timeline', unit: 'none', description: '1 while a health check passes.',
        queries: [[m('health_check_up'), '{{instance}} {{check}}']] },
      { title: 'Health check duration', unit: 's', description: "How long each check's last run took.",
        queries: [[`max by (check) (${m('health_check_duration_seconds')})`, '{{check}}']] },
      { title: 'GeoIP lookups', unit: 'cps', description: 'Address lookups by outcome, and those answered from the cache.',
        queries: [[`sum by (reason) (rate(${m('geo_lookups_total')}[${RATE}]))`, '{{reason}}'], [`sum(rate(${m('geo_lookup_cache_hits_total')}[${RATE}]))`, 'cache hits']] },
      { title: 'Geo gates', unit: 'cps', description: 'Messages geo gates let through, and turned away by reason.',
        queries: [[`sum by (gate) (rate(${m('geo_gate_passed_total')}[${RATE}]))`, 'passed {{gate}}'], [`sum by (gate, reason) (rate(${m('geo_gate_blocked_total')}[${RATE}]))`, 'blocked {{gate}}: {{reason}}']] },
    ]],
  ]
  const panels: DashboardPanel[] = []
  let y = 0
  for (const [title, specs] of sections) {
    panels.push({ id: panels.length + 1, type: 'row', title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 } })
    y += 1
    specs.forEach((spec, i) => {
      panels.push(panel(panels.length + 1, spec, { x: (i % 2) * 12, y: y + Math.floor(i / 2) * 8, w: 12, h: 8 }))
    })
    y += Math.ceil(specs.length / 2) * 8
  }
  return {
    title: `${plan.name} — RouteMQ load balancing`,
    uid: `${plan.name}-routemq`.slice(0, 40),
    tags: ['routemq'],
    timezone: 'browser',
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0 },
        {
          name: 'instance', label: 'Instance', type: 'query', datasource: DATASOURCE,
          query: { query: `label_values(${p}messages_received_total, instance)`, refId: 'instances' },
          definition: `label_values(${p}messages_received_total, instance)`,
          includeAll: true, multi: true, allValue: '.*', current: {}, refresh: 2, sort: 1, hide: 0,
        },
      ],
    },
    annotations: { list: [] },
    panels,
  }
}

function panel(id: number, spec: PanelSpec, gridPos: DashboardPanel['gridPos']): DashboardPanel {
  const type = spec.type ?? 'timeseries'
  const steps: { color: string; value: number | null }[] = [{ color: 'green', value: null }]
  if (spec.threshold !== undefined) steps.push({ color: 'red', value: spec.threshold })
  if (type === 'state-timeline') steps.splice(0, 1, { color: 'red', value: null }, { color: 'green', value: 1 })
  return {
    id, type, title: spec.title, description: spec.description, gridPos, datasource: DATASOURCE,
    targets: spec.queries.map(([expr, legendFormat], i) => ({ refId: String.fromCharCode(65 + i), expr, legendFormat })),
    fieldConfig: {
      defaults: {
        unit: spec.unit,
        ...(spec.max !== undefined ? { min: 0, max: spec.max } : {}),
        thresholds: { mode: 'absolute', steps },
        ...(type === 'timeseries' && spec.threshold !== undefined ? { custom: { thresholdsStyle: { mode: 'line' } } } : {}),
        ...(type === 'state-timeline' ? { mappings: [{ type: 'value', options: { 0: { text: 'down', color: 'red' }, 1: { text: 'up', color: 'green' } } }] } : {}),
      },
      overrides: [],
    },
    options: type === 'timeseries' ? { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } } : {},
  }
}
