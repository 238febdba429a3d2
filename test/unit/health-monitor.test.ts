import assert from 'node:assert/strict'
import {
  HealthMonitor, HealthServer, InvalidOptionError, LoadBalancingMetrics, preciseNow, silentLogger, type HealthChange, type HealthResponse, type Logger,
} from '../../src/index.js'

/** A check whose outcome the test sets; `monitor.check(name)` runs it. */
function switchable(initial: boolean) {
  const control = { passing: initial, runs: 0 }
  const check = () => {
    control.runs++
    if (!control.passing) throw new Error('connect ECONNREFUSED to postgres://app:s3cret@db:5432/app')
  }
  return { control, check }
}

async function get(url: string): Promise<{ status: number; type: string | null; body: HealthResponse; ms: number }> {
  const started = performance.now()
  const response = await fetch(url)
  const body = (await response.json()) as HealthResponse
  return { status: response.status, type: response.headers.get('content-type'), body, ms: performance.now() - started }
}

describe('HealthMonitor', () => {
  let monitor: HealthMonitor
  afterEach(() => monitor?.stop())

  it('lets the first result decide, then needs fall failures or rise passes in a row', async () => {
    monitor = new HealthMonitor()
    const { control, check } = switchable(true)
    monitor.register({ name: 'db', check, rise: 3, fall: 2, intervalMs: 60_000 })
    const changes: HealthChange[] = []
    monitor.onChange((c) => changes.push(c))
    assert.equal(monitor.state('db'), 'unknown')
    await monitor.start()
    assert.equal(monitor.state('db'), 'healthy')
    control.passing = false
    assert.equal((await monitor.check('db')).state, 'healthy', 'one failure is not enough')
    assert.equal((await monitor.check('db')).state, 'unhealthy')
    control.passing = true
    await monitor.check('db')
    await monitor.check('db')
    assert.equal(monitor.state('db'), 'unhealthy', 'two passes are not enough with rise 3')
    await monitor.check('db')
    assert.equal(monitor.state('db'), 'healthy')
    assert.deepEqual(changes.map((c) => `${c.from}->${c.to}`), ['unknown->healthy', 'healthy->unhealthy', 'unhealthy->healthy'])
  })

  it('says degraded when a non-critical check fails and unhealthy when a critical one does', async () => {
    monitor = new HealthMonitor()
    const cache = switchable(true)
    const db = switchable(true)
    monitor.register({ name: 'cache', check: cache.check, critical: false, rise: 1, fall: 1, intervalMs: 60_000 })
    monitor.register({ name: 'db', check: db.check, rise: 1, fall: 1, intervalMs: 60_000 })
    await monitor.start()
    assert.equal(monitor.summary().status, 'healthy')
    cache.control.passing = false
    await monitor.check('cache')
    assert.equal(monitor.summary().status, 'degraded')
    db.control.passing = false
    await monitor.check('db')
    assert.equal(monitor.summary().status, 'unhealthy')
    cache.control.passing = db.control.passing = true
    await monitor.check('cache')
    await monitor.check('db')
    assert.equal(monitor.summary().status, 'healthy')
  })

  it('counts a critical check not yet run as unhealthy', () => {
    monitor = new HealthMonitor()
    monitor.register({ name: 'db', check: () => undefined })
    assert.equal(monitor.summary().status, 'unhealthy')
  })

  it('fails a check that never answers at its timeout, aborts its signal, and never calls it twice at once', async () => {
    monitor = new HealthMonitor()
    let calls = 0
    let signal: AbortSignal | undefined
    monitor.register({
      name: 'hung', timeoutMs: 50, intervalMs: 60_000, fall: 1,
      check: (s) => {
        calls++
        signal = s
        return new Promise<void>(() => undefined)
      },
    })
    const started = performance.now()
    await monitor.start()
    assert.ok(performance.now() - started < 1000)
    assert.equal(monitor.state('hung'), 'unhealthy')
    assert.equal(monitor.status('hung')!.lastError, 'no answer within 50 ms')
    assert.equal(signal!.aborted, true)
    await monitor.check('hung')
    assert.equal(calls, 1, 'the hung call is still pending, so no second call')
    assert.match(monitor.status('hung')!.lastError!, /still running after its 50 ms timeout/)
  })

  it('keeps URLs and passwords out of the last error', async () => {
    monitor = new HealthMonitor()
    monitor.register({ name: 'db', check: switchable(false).check, intervalMs: 60_000 })
    await monitor.start()
    const error = monitor.status('db')!.lastError!
    assert.equal(error, 'connect ECONNREFUSED to db:5432')
  })

  it('announces down and up, and runs failover callbacks, whose errors are only logged', async () => {
    const logged: string[] = []
    monitor = new HealthMonitor({ logger: { debug() {}, info() {}, warn() {}, error: (m) => logged.push(m) } })
    const { control, check } = switchable(true)
    monitor.register({ name: 'db', check, fall: 1, rise: 1, intervalMs: 60_000 })
    const downs: string[] = []
    const ups: string[] = []
    const offDown = monitor.onDown((c) => downs.push(c.name))
    monitor.onUp((c) => ups.push(c.name))
    const failedOver: HealthChange[] = []
    monitor.onFailover('db', (change) => {
      failedOver.push(change)
    })
    monitor.onFailover('db', async () => {
      throw new Error('standby unreachable')
    })
    await monitor.start()
    control.passing = false
    await monitor.check('db')
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(downs, ['db'])
    assert.equal(failedOver.length, 1)
    assert.equal(failedOver[0]!.to, 'unhealthy')
    assert.deepEqual(logged, ['failover callback failed'])
    offDown()
    control.passing = true
    await monitor.check('db')
    assert.deepEqual(ups, ['db', 'db'], 'the first pass and the recovery')
    control.passing = false
    await monitor.check('db')
    assert.deepEqual(downs, ['db'], 'the disposed listener heard nothing more')
  })

  it('runs a check again at once when its dependency says it changed', async () => {
    monitor = new HealthMonitor()
    const { control, check } = switchable(true)
    let recheck!: () => void
    monitor.register({ name: 'pool', check, fall: 1, intervalMs: 60_000, watch: (r) => ((recheck = r), () => undefined) })
    await monitor.start()
    const down = new Promise<HealthChange>((resolve) => monitor.onDown(resolve))
    control.passing = false
    recheck()
    assert.equal((await down).name, 'pool')
  })

  it('keeps the state while a check reports it is pending', async () => {
    monitor = new HealthMonitor()
    let pending = true
    monitor.register({ name: 'broker', check: () => (pending ? { pending: true } : undefined), intervalMs: 60_000 })
    await monitor.start()
    assert.equal(monitor.state('broker'), 'unknown')
    pending = false
    await monitor.check('broker')
    assert.equal(monitor.state('broker'), 'healthy')
  })

  it('whenHealthy waits for a pass that started after the given time', async () => {
    monitor = new HealthMonitor({ recheckMinIntervalMs: 10 })
    const { control, check } = switchable(true)
    monitor.register({ name: 'db', check, rise: 1, fall: 1, intervalMs: 60_000 })
    await monitor.start()
    const since = Date.now() + 1
    await new Promise((resolve) => setTimeout(resolve, 5))
    const runsBefore = control.runs
    await monitor.whenHealthy(['db'], since)
    assert.ok(control.runs > runsBefore, 'the wait made the check run again')
    const aborted = new AbortController()
    await new Promise((resolve) => setImmediate(resolve)) // let the requested run end
    control.passing = false
    await monitor.check('db')
    assert.equal(monitor.state('db'), 'unhealthy')
    const waiting = monitor.whenHealthy(['db'], 0, aborted.signal)
    aborted.abort(new Error('gave up'))
    await assert.rejects(waiting, /gave up/)
  })

  it('runs again for a waiter whose fresh pass the run under way cannot give', async function () {
    this.timeout(2000)
    monitor = new HealthMonitor({ recheckMinIntervalMs: 5 })
    let release!: () => void
    let runs = 0
    monitor.register({
      name: 'db', rise: 1, fall: 1, intervalMs: 60_000,
      check: () => {
        runs++
        // The second run hangs until released; the others pass at once.
        return runs === 2 ? new Promise<void>((resolve) => (release = resolve)) : undefined
      },
    })
    await monitor.start()
    const underWay = monitor.check('db')
    await new Promise((resolve) => setTimeout(resolve, 5))
    // `since` on the monitor's own clock (preciseNow): Date.now() may run a few ms ahead of it, as the system clock is slewed.
    const fresh = monitor.whenHealthy(['db'], preciseNow())
    release()
    await underWay
    await fresh
    assert.equal(runs, 3, 'a third run, right after the one under way')
  })

  it('rejects waits when it stops, and registers a source all or nothing', async () => {
    monitor = new HealthMonitor()
    monitor.register({ name: 'db', check: () => Promise.reject(new Error('down')), fall: 1, intervalMs: 60_000 })
    await monitor.start()
    const waiting = monitor.whenHealthy(['db'])
    monitor.stop()
    await assert.rejects(waiting, /stopped/)
    const source = { healthChecks: () => [{ name: 'a', check: () => undefined }, { name: 'db', check: () => undefined }] }
    assert.throws(() => monitor.registerSource(source), /another check has this name/)
    assert.equal(monitor.has('a'), false, 'the first one was taken back')
  })

  it('names the offending field of a bad definition', () => {
    monitor = new HealthMonitor()
    const bad: [Record<string, unknown>, string][] = [
      [{ name: 'a b', check: () => undefined }, 'check.name'],
      [{ name: 'db', check: 'SELECT 1' }, 'checks["db"].check'],
      [{ name: 'db', check: () => undefined, timeoutMs: 0 }, 'checks["db"].timeoutMs'],
      [{ name: 'db', check: () => undefined, intervalMs: 3e9 }, 'checks["db"].intervalMs'],
      [{ name: 'db', check: () => undefined, rise: 1.5 }, 'checks["db"].rise'],
      [{ name: 'db', check: () => undefined, isOutage: true }, 'checks["db"].isOutage'],
    ]
    for (const [definition, field] of bad) {
      assert.throws(() => monitor.register(definition as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field, field)
    }
    monitor.register({ name: 'db', check: () => undefined })
    assert.throws(() => monitor.register({ name: 'db', check: () => undefined }), /another check has this name/)
  })
})

describe('HealthServer', () => {
  let monitor: HealthMonitor
  let server: HealthServer
  afterEach(async () => {
    monitor?.stop()
    await server?.close()
  })

  it('answers /health in under 100 ms while a check hangs, and /ready fails on it', async () => {
    monitor = new HealthMonitor()
    monitor.register({ name: 'cache', check: () => undefined, critical: false })
    monitor.register({ name: 'db', check: () => new Promise<void>(() => undefined), timeoutMs: 30_000, componentType: 'datastore' })
    void monitor.start()
    server = new HealthServer({ monitor, port: 0, transportConnected: () => true })
    await server.start()
    await monitor.check('cache')
    const health = await get(`${server.url}/health`)
    assert.ok(health.ms < 100, `${health.ms} ms`)
    assert.equal(health.status, 200)
    assert.equal(health.type, 'application/health+json')
    assert.equal(health.body.status, 'warn')
    assert.equal(health.body.checks['db']![0]!.output, 'not checked yet')
    const ready = await get(`${server.url}/ready`)
    assert.ok(ready.ms < 100, `${ready.ms} ms`)
    assert.equal(ready.status, 503)
    assert.equal(ready.body.status, 'fail')
    assert.equal(ready.body.checks['db']![0]!.status, 'fail')
    assert.equal(ready.body.checks['cache']![0]!.status, 'pass')
  })

  it('is ready with every critical check healthy and the transport connected; warns when degraded; fails when shutting down', async () => {
    monitor = new HealthMonitor()
    const cache = switchable(true)
    monitor.register({ name: 'cache', check: cache.check, critical: false, fall: 1 })
    monitor.register({ name: 'db', check: () => ({ observedValue: 3, observedUnit: 'ms' }) })
    await monitor.start()
    let connected = false
    server = new HealthServer({ monitor, port: 0, transportConnected: () => connected })
    await server.start()
    assert.equal((await get(`${server.url}/ready`)).status, 503, 'not connected')
    connected = true
    const ready = await get(`${server.url}/ready`)
    assert.equal(ready.status, 200)
    assert.equal(ready.body.status, 'pass')
    assert.deepEqual(ready.body.checks['db']![0]!.observedValue, 3)
    cache.control.passing = false
    await monitor.check('cache')
    const degraded = await get(`${server.url}/ready`)
    assert.equal(degraded.status, 200)
    assert.equal(degraded.body.status, 'warn')
    server.beginShutdown()
    const draining = await get(`${server.url}/ready`)
    assert.equal(draining.status, 503)
    assert.ok(draining.body.checks['shutdown'])
    assert.equal((await get(`${server.url}/health`)).status, 200, 'liveness still passes')
  })

  it('refuses other methods, answers 404 elsewhere and on /metrics without metrics, and names the port when it is taken', async () => {
    monitor = new HealthMonitor()
    server = new HealthServer({ monitor, port: 0 })
    await server.start()
    assert.equal((await fetch(`${server.url}/ready`, { method: 'POST' })).status, 405)
    assert.equal((await fetch(`${server.url}/nope`)).status, 404)
    assert.equal((await fetch(`${server.url}/metrics`)).status, 404)
    const head = await fetch(`${server.url}/health`, { method: 'HEAD' })
    assert.equal(head.status, 200)
    const second = new HealthServer({ monitor, port: server.port! })
    await assert.rejects(second.start(), (e: unknown) => e instanceof InvalidOptionError && e.field === 'health.port')
    assert.throws(() => new HealthServer({ monitor, port: 70_000 }), /health\.port/)
  })
})

describe('HealthServer options', () => {
  const monitor = new HealthMonitor({ logger: silentLogger })
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['no monitor', {}, 'health.monitor', /is required/],
    ['a misspelt key', { monitor, prot: 1 }, 'health.prot', /did you mean health\.port\?/],
    ['a connection cap beyond any file descriptor limit', { monitor, maxConnections: 1e9 }, 'health.maxConnections', /from 2 to 65536/],
    ['transportConnected that is no function', { monitor, transportConnected: 5 }, 'health.transportConnected', /function/],
    ['transportConnected that is a boolean', { monitor, transportConnected: true }, 'health.transportConnected', /function/],
    ['metrics that are no LoadBalancingMetrics', { monitor, metrics: 5 }, 'health.metrics', /LoadBalancingMetrics/],
    ['a logger that is no Logger', { monitor, logger: 5 }, 'health.logger', /Logger/],
  ]
  for (const [what, options, field, message] of cases) {
    it(`refuses ${what} when built, naming ${field}, instead of crashing at the first request`, () => {
      assert.throws(() => new HealthServer(options as never), (e: unknown) => e instanceof InvalidOptionError && e.field === field && message.test(e.message))
    })
  }
})

describe('HealthServer when what it serves throws', () => {
  let server: HealthServer | undefined
  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  function recording(): { logger: Logger; errors: [string, Readonly<Record<string, unknown>> | undefined][] } {
    const errors: [string, Readonly<Record<string, unknown>> | undefined][] = []
    return { logger: { ...silentLogger, error: (message, fields) => errors.push([message, fields]) }, errors }
  }

  it('answers 500 and logs the error, scrubbed, when transportConnected throws, and goes on answering', async () => {
    const { logger, errors } = recording()
    server = new HealthServer({
      monitor: new HealthMonitor({ logger: silentLogger }), port: 0, logger,
      transportConnected: () => {
        throw new Error('lost postgres://app:s3cret@db:5432/app')
      },
    })
    await server.start()
    const ready = await fetch(`${server.url}/ready`)
    assert.equal(ready.status, 500)
    assert.doesNotMatch(await ready.text(), /s3cret/)
    assert.equal(errors.length, 1)
    assert.doesNotMatch(JSON.stringify(errors), /s3cret/)
    assert.match(String(errors[0]![1]?.['error']), /lost db:5432/)
    assert.equal((await fetch(`${server.url}/health`)).status, 200)
  })

  it('answers 500 and logs the error when collecting metrics throws at once instead of rejecting', async () => {
    const { logger, errors } = recording()
    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    Object.defineProperty(metrics, 'text', {
      value: () => {
        throw new TypeError('registry is gone')
      },
    })
    server = new HealthServer({ monitor: new HealthMonitor({ logger: silentLogger }), port: 0, logger, metrics })
    await server.start()
    assert.equal((await fetch(`${server.url}/metrics`)).status, 500)
    assert.match(String(errors[0]![1]?.['error']), /registry is gone/)
  })
})
