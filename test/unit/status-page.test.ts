import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { HealthModule, HealthMonitor, HealthServer, InvalidOptionError, loadBalancingOptionsFromEnv, StatusPage, type StatusReport } from '../../src/index.js'

type Listener = (request: { backend: string; failed: boolean }) => void

/** A broker pool as the page reads it: `stats` and `onRequest`. */
function brokerPool(brokers: { id: string; state: 'unknown' | 'healthy' | 'unhealthy'; region?: string }[]) {
  const listeners = new Set<Listener>()
  return {
    stats: {
      mode: 'all', active: undefined, failovers: 3, published: 10, acknowledged: 9, buffered: 1,
      brokers: brokers.map((b) => ({ id: b.id, state: b.state, connected: b.state === 'healthy', latencyMs: 1.234, outstanding: 0, region: b.region, dropped: 0 })),
    },
    onRequest(listener: Listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    emit(request: { backend: string; failed: boolean }) {
      for (const listener of listeners) listener(request)
    },
  }
}

function replicaPool(replicas: { id: string; state: 'unknown' | 'healthy' | 'unhealthy'; region?: string; lagMs?: number }[]) {
  const connections = { total: 2, idle: 1, waiting: 0 }
  return {
    stats: {
      primary: { id: 'db-1:5432', healthy: true, queries: 5, errors: 0, p50LatencyMs: 0.51, p99LatencyMs: 2.06, connections },
      replicas: replicas.map((r) => ({
        id: r.id, state: r.state, inRecovery: true, lagMs: r.lagMs, lagBytes: 0, p50LatencyMs: 0.4, p99LatencyMs: 1.5, outstanding: 0,
        connections, queries: 7, errors: 1, region: r.region,
      })),
      reads: 7, writes: 5, readRetries: 0, fallbacksToPrimary: 1,
    },
  }
}

function report(page: StatusPage): StatusReport {
  // Through JSON, as the browser gets it.
  return JSON.parse(JSON.stringify(page.report())) as StatusReport
}

describe('status page report', () => {
  it('shows brokers, the primary, replicas and regions with their states, and counts publishes per broker', () => {
    const monitor = new HealthMonitor()
    const page = new StatusPage({}, { monitor, transportConnected: () => true })
    const brokers = brokerPool([{ id: 'b1:1883', state: 'healthy', region: 'eu' }, { id: 'b2:1883', state: 'unhealthy', region: 'us' }])
    page.observeSource(brokers)
    page.observeSource(replicaPool([{ id: 'r1:5432', state: 'healthy', region: 'eu', lagMs: 12.34 }, { id: 'r2:5432', state: 'unknown' }]))
    brokers.emit({ backend: 'b1:1883', failed: false })
    brokers.emit({ backend: 'b1:1883', failed: false })
    brokers.emit({ backend: 'b2:1883', failed: true })
    const r = report(page)
    assert.deepEqual(r.brokers!.rows.map((b) => [b.id, b.state, b.connected, b.published, b.publishFailures, b.latencyMs]), [
      ['b1:1883', 'up', true, 2, 0, 1.2],
      ['b2:1883', 'down', false, 0, 1, 1.2],
    ])
    assert.equal(r.brokers!.failovers, 3)
    assert.deepEqual([r.database!.primary.id, r.database!.primary.state, r.database!.primary.p99Ms], ['db-1:5432', 'up', 2.1])
    assert.deepEqual(r.database!.replicas.map((x) => [x.id, x.state, x.lagMs, x.region]), [['r1:5432', 'up', 12.3, 'eu'], ['r2:5432', 'unknown', null, null]])
    assert.deepEqual(r.regions, [
      { region: 'eu', brokersUp: 1, brokers: 1, replicasUp: 1, replicas: 1 },
      { region: 'us', brokersUp: 0, brokers: 1, replicasUp: 0, replicas: 0 },
    ])
    assert.equal(r.app.transportConnected, true)
  })

  it('stops counting and showing a source once its disposer ran', () => {
    const page = new StatusPage({}, { monitor: new HealthMonitor() })
    const brokers = brokerPool([{ id: 'b1', state: 'healthy' }])
    const dispose = page.observeSource(brokers)
    dispose()
    brokers.emit({ backend: 'b1', failed: false })
    assert.equal(report(page).brokers, null)
    page.observeSource(brokers)
    assert.equal(report(page).brokers!.rows[0]!.published, 0, 'a publish while disposed is not counted')
  })

  it('never shows a password that an id, a region or a check error holds', async () => {
    const monitor = new HealthMonitor()
    monitor.register({ name: 'billing', check: () => { throw new Error('connect postgres://svc:hunter2@db.internal:5432/app refused') }, critical: false })
    await monitor.start()
    monitor.stop()
    const page = new StatusPage({}, { monitor })
    page.observeSource(brokerPool([{ id: 'mqtt://user:hunter2@b1:1883', state: 'healthy', region: 'password=hunter2' }]))
    const text = JSON.stringify(page.report())
    assert.doesNotMatch(text, /hunter2/)
    assert.match(text, /db\.internal:5432/, 'the host is kept')
    const check = report(page).checks.find((c) => c.name === 'billing')!
    assert.equal(check.state, 'down')
  })

  it('reads gates as open, holding or rejecting, and counts messages and lookups', async () => {
    const monitor = new HealthMonitor()
    let up = true
    monitor.register({ name: 'primary', check: () => { if (!up) throw new Error('down') }, rise: 1, fall: 1 })
    await monitor.start()
    const page = new StatusPage({}, { monitor })
    const stats = { held: 2, heldTotal: 5, released: 3, outageRetries: 0, rejected: { full: 1, timeout: 2, unavailable: 0, shutdown: 0 }, spool: undefined }
    page.observeGate({ dependencies: ['primary'], mode: 'hold', stats: stats as never })
    page.observeGate({ dependencies: ['primary'], mode: 'reject', stats: stats as never })
    const dispatch = { received: 9, handled: 7, failed: 1, unmatched: 1, malformed: 0, refused: 0, deadLettered: 0, deadLetterRefused: 0, withheld: 0, dropped: 0, duplicateCopies: 0, inFlight: 0 }
    page.observeApplication({ state: 'started', stats: dispatch })
    page.observeSource({ stats: { lookups: 4, cacheHits: 1, reasons: { found: 3, private: 1 } } })
    assert.deepEqual(report(page).gates.map((g) => g.state), ['open', 'open'])
    up = false
    await monitor.check('primary')
    monitor.stop()
    const r = report(page)
    assert.deepEqual(r.gates.map((g) => [g.state, g.held, g.rejected]), [['holding', 2, 3], ['rejecting', 2, 3]])
    assert.equal(r.status, 'unhealthy')
    assert.equal(r.counters['messages received'], 9)
    assert.equal(r.counters['geo lookups'], 4)
    assert.equal(r.counters['geo private'], 1)
    assert.equal(r.app.state, 'started')
  })
})

describe('status page document', () => {
  it('allows by hash exactly its inline script and style, and loads nothing from elsewhere', async () => {
    const server = new HealthServer({ monitor: new HealthMonitor(), port: 0, statusPage: new StatusPage({ refreshMs: 1500 }, { monitor: new HealthMonitor() }) })
    await server.start()
    try {
      const response = await fetch(`${server.url}/status`)
      assert.equal(response.status, 200)
      assert.match(response.headers.get('content-type')!, /^text\/html/)
      const csp = response.headers.get('content-security-policy')!
      const html = await response.text()
      const inline = (tag: string) => [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!)
      const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`
      assert.equal(inline('script').length, 1)
      assert.equal(inline('style').length, 1)
      assert.match(csp, new RegExp(`script-src ${escape(hash(inline('script')[0]!))}(;|$)`))
      assert.match(csp, new RegExp(`style-src ${escape(hash(inline('style')[0]!))}(;|$)`))
      assert.match(csp, /default-src 'none'/)
      assert.doesNotMatch(csp, /unsafe/)
      assert.doesNotMatch(html, /\bsrc=|\bhref=|https?:\/\/|innerHTML|insertAdjacentHTML|document\.write/, 'no external asset and no HTML parsing of data')
      assert.match(html, /data-refresh-ms="1500"/)
      const json = await fetch(`${server.url}/status.json`)
      assert.equal(json.status, 200)
      assert.equal(json.headers.get('content-type'), 'application/json')
      assert.equal(((await json.json()) as StatusReport).status, 'healthy')
      assert.equal((await fetch(`${server.url}/status`, { method: 'HEAD' })).status, 200)
    } finally {
      await server.close()
    }
  })

  it('answers 404 on /status without a page, and with statusPage: false', async () => {
    for (const server of [new HealthServer({ monitor: new HealthMonitor(), port: 0 }), new HealthModule({ http: { port: 0 }, statusPage: false, shutdown: false }).server!]) {
      await server.start()
      try {
        assert.equal((await fetch(`${server.url}/status`)).status, 404)
        assert.equal((await fetch(`${server.url}/status.json`)).status, 404)
      } finally {
        await server.close()
      }
    }
    assert.equal(new HealthModule({ http: false, shutdown: false }).statusPage, undefined, 'no endpoints, no page')
  })

  const cases: [string, Record<string, unknown>, string][] = [
    ['a misspelt status page option', { statusPage: { refresh: 1000 } }, 'health.statusPage.refresh'],
    ['a refresh faster than half a second', { statusPage: { refreshMs: 100 } }, 'health.statusPage.refreshMs'],
    ['a refresh slower than a minute', { statusPage: { refreshMs: 120_000 } }, 'health.statusPage.refreshMs'],
    ['status page options that are no object', { statusPage: true }, 'health.statusPage'],
  ]
  for (const [what, options, field] of cases) {
    it(`names ${field} for ${what}`, () => {
      assert.throws(() => new HealthModule({ shutdown: false, ...options } as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }
})

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
}

describe('ROUTEMQ_STATUS_PAGE_ENABLED', () => {
  const brokers = { ROUTEMQ_MQTT_BROKERS: 'mqtt://b1:1883' }
  it('turns the page off with false, and leaves it on otherwise', () => {
    const off = loadBalancingOptionsFromEnv({ ...brokers, ROUTEMQ_STATUS_PAGE_ENABLED: 'false' })
    assert.equal((off.health as { statusPage?: unknown }).statusPage, false)
    const on = loadBalancingOptionsFromEnv({ ...brokers, ROUTEMQ_STATUS_PAGE_ENABLED: 'true' })
    assert.equal((on.health as { statusPage?: unknown }).statusPage, undefined)
  })
  it('names the variable for a value that is no boolean, and when health is off', () => {
    for (const env of [{ ROUTEMQ_STATUS_PAGE_ENABLED: 'nope' }, { ROUTEMQ_HEALTH_ENABLED: 'false', ROUTEMQ_STATUS_PAGE_ENABLED: 'true' }]) {
      assert.throws(() => loadBalancingOptionsFromEnv({ ...brokers, ...env }), (e: unknown) => e instanceof InvalidOptionError && e.field === 'ROUTEMQ_STATUS_PAGE_ENABLED')
    }
  })
})
