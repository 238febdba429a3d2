import assert from 'node:assert/strict'
import { Kysely } from 'kysely'
import { connectAsync } from 'mqtt'
import pg from 'pg'
import {
  Application, BrokerPool, healthGate, HealthModule, InvalidOptionError, migrateToLatest, ReplicaPool, ReplicatedPostgresDialect,
  Router, silentLogger, type HealthResponse, type InboundMessage, type MessageReceiver, type MqttTransport, type PublishOptions,
  type Subscription,
} from '../../src/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'
import { parsePrometheusText } from '../support/prometheus-text.js'

interface Database {
  gate_readings: { id: string; device: string }
}

const BROKER_SECRET = 'brokerS3cret'
const DB_SECRET = 'dbS3cret'

/** A URL with credentials the servers ignore (anonymous Mosquitto, trust authentication), to prove none leaks. */
function withCredentials(url: string, user: string, password: string): string {
  const parsed = new URL(url)
  parsed.username = user
  parsed.password = password
  return parsed.toString()
}

/** The kernel's transport seam, recording when each message was settled and how. */
class RecordingTransport implements MqttTransport {
  constructor(
    readonly inner: MqttTransport,
    readonly onSettle: (message: InboundMessage, acknowledge: boolean) => void,
  ) {}

  get connected(): boolean {
    return this.inner.connected
  }

  get persistentSession(): boolean {
    return this.inner.persistentSession
  }

  connect(receiver: MessageReceiver): Promise<void> {
    return this.inner.connect((message) =>
      receiver({
        topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, dup: message.dup,
        properties: message.properties, broker: message.broker,
        settle: (acknowledge) => {
          this.onSettle(message, acknowledge)
          message.settle(acknowledge)
        },
      }),
    )
  }

  subscribe(subscriptions: readonly Subscription[]): Promise<void> {
    return this.inner.subscribe(subscriptions)
  }

  unsubscribe(topics: readonly string[]): Promise<void> {
    return this.inner.unsubscribe(topics)
  }

  publish(topic: string, payload: string | Uint8Array, options?: PublishOptions): Promise<void> {
    return this.inner.publish(topic, payload, options)
  }

  close(): Promise<void> {
    return this.inner.close()
  }
}

async function getJson(url: string): Promise<{ status: number; text: string; body: HealthResponse }> {
  const response = await fetch(url)
  const text = await response.text()
  return { status: response.status, text, body: JSON.parse(text) as HealthResponse }
}

function assertNoSecrets(text: string, where: string): void {
  for (const secret of [BROKER_SECRET, DB_SECRET, 'mqtt://', 'postgres://', 'postgresql://', 'svc:', 'app:']) {
    assert.ok(!text.includes(secret), `${where} contains ${secret}`)
  }
}

describe('Health monitoring on real brokers and PostgreSQL', function () {
  this.timeout(60_000)
  let topology: Topology
  const cleanup: (() => Promise<unknown>)[] = []

  before(async () => {
    // Held messages stay unacknowledged, so the broker queues what follows: let it queue an outage's worth.
    topology = await startTopology({ brokers: 1, replicas: 1, brokerConfig: 'max_queued_messages 100000' })
    await migrateToLatest(topology.primary!.url)
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    await admin.query('CREATE TABLE gate_readings (id text PRIMARY KEY, device text NOT NULL)')
    await admin.end()
  })
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!().catch(() => undefined)
  })
  after(async () => {
    await topology?.stop()
  })

  async function pools(clientId: string) {
    const brokers = new BrokerPool({ brokers: [withCredentials(topology.brokers[0]!.url, 'svc', BROKER_SECRET)], clientId })
    const replicas = await ReplicaPool.create({
      primary: withCredentials(topology.primary!.url, 'postgres', DB_SECRET),
      replicas: topology.replicas.map((r) => withCredentials(r.url, 'postgres', DB_SECRET)),
    })
    const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(replicas) })
    cleanup.push(() => db.destroy())
    return { brokers, replicas, db }
  }

  it('serves /health, /ready and /metrics for an app with both pools, with no secret in any body', async () => {
    const { brokers, replicas, db } = await pools('health-endpoints')
    const router = new Router()
    let handled = 0
    let onHandled: (() => void) | undefined
    router.on('readings/{device}', async (ctx) => {
      await db.insertInto('gate_readings').values({ id: `endpoint-${String(ctx.payload)}`, device: ctx.params.device }).execute()
      handled++
      onHandled?.()
    }, { qos: 1, middleware: [healthGate('primary')] })
    // The transport's checks and metrics come without listing it.
    const health = new HealthModule({ sources: [replicas], http: { port: 0 }, shutdown: false })
    const app = Application.create({ router, transport: brokers, modules: [health], logger: silentLogger })
    await app.start()
    cleanup.push(() => app.stop())
    const base = health.server!.url!

    const device = await connectAsync(topology.brokers[0]!.url, { clientId: 'health-device' })
    cleanup.push(() => device.endAsync())
    const done = new Promise<void>((resolve) => (onHandled = () => handled >= 5 && resolve()))
    for (let i = 0; i < 5; i++) await device.publishAsync('readings/d1', String(i), { qos: 1 })
    await done

    const live = await getJson(`${base}/health`)
    assert.equal(live.status, 200)
    assert.equal(live.body.status, 'pass')
    const names = Object.keys(live.body.checks).sort()
    const replicaId = replicas.stats.replicas[0]!.id
    const brokerId = brokers.stats.brokers[0]!.id
    assert.deepEqual(names, [`broker/${brokerId}`, 'primary', `replica/${replicaId}`, 'replicas', 'uptime'].sort())
    const ready = await getJson(`${base}/ready`)
    assert.equal(ready.status, 200)
    assert.equal(ready.body.status, 'pass')
    assert.equal(ready.body.checks['mqtt:connected']![0]!.observedValue, true)

    const response = await fetch(`${base}/metrics`)
    assert.equal(response.status, 200)
    assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    const families = parsePrometheusText(text)
    for (const [name, type] of [
      ['routemq_pool_requests_total', 'counter'], ['routemq_pool_request_failures_total', 'counter'],
      ['routemq_pool_request_duration_seconds', 'histogram'], ['routemq_pool_failovers_total', 'counter'],
      ['routemq_pool_backend_up', 'gauge'], ['routemq_replica_lag_seconds', 'gauge'], ['routemq_replica_lag_bytes', 'gauge'],
      ['routemq_held_messages', 'gauge'], ['routemq_gate_holds_total', 'counter'], ['routemq_gate_rejections_total', 'counter'],
      ['routemq_offline_buffer_messages', 'gauge'], ['routemq_offline_buffer_bytes', 'gauge'], ['routemq_messages_total', 'counter'], ['routemq_messages_received_total', 'counter'],
      ['routemq_messages_in_flight', 'gauge'], ['routemq_health_check_up', 'gauge'], ['routemq_health_score', 'gauge'],
      ['routemq_pool_backend_dropped_messages_total', 'counter'], ['routemq_mqtt_sessions_adopted_total', 'counter'],
      ['process_cpu_seconds_total', 'counter'], ['nodejs_eventloop_lag_seconds', 'gauge'],
    ] as const) {
      assert.equal(families.get(name)?.type, type, `${name} is a ${type}`)
    }
    const sample = (name: string, labels: Record<string, string>) =>
      families.get(name)!.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
    assert.equal(sample('routemq_messages_total', { outcome: 'handled' }), 5)
    assert.equal(sample('routemq_messages_received_total', {}), 5)
    assert.ok(sample('routemq_pool_requests_total', { pool: 'postgres', backend: replicas.stats.primary.id! })! >= 5)
    assert.ok(families.get('routemq_pool_request_duration_seconds')!.samples.some((s) => s.name.endsWith('_bucket') && s.labels['le'] === '+Inf'))
    assert.equal(sample('routemq_pool_backend_up', { pool: 'mqtt', backend: brokerId }), 1)
    assert.equal(sample('routemq_pool_backend_up', { pool: 'postgres', backend: replicaId }), 1)
    assert.equal(sample('routemq_health_check_up', { check: 'primary', critical: 'true' }), 1)
    const score = sample('routemq_health_score', {})!
    assert.ok(score > 0.5 && score <= 1, String(score))
    assert.equal(sample('routemq_held_messages', { gate: 'primary' }), 0)

    // A dead replica puts its error in the bodies: still no secret, and readiness only warns.
    await topology.replicas[0]!.kill()
    cleanup.push(() => topology.replicas[0]!.restart())
    await new Promise<void>((resolve) => health.monitor.onDown((c) => c.name === `replica/${replicaId}` && resolve()))
    const degraded = await getJson(`${base}/ready`)
    assert.equal(degraded.status, 200)
    assert.equal(degraded.body.status, 'warn')
    assert.equal(degraded.body.checks[`replica/${replicaId}`]![0]!.status, 'warn')
    assert.ok(degraded.body.checks[`replica/${replicaId}`]![0]!.output)
    const bodies = [degraded.text, (await getJson(`${base}/health`)).text, await (await fetch(`${base}/metrics`)).text(), await (await fetch(`${base}/status.json`)).text()]
    bodies.forEach((body, i) => assertNoSecrets(body, ['/ready', '/health', '/metrics', '/status.json'][i]!))
    assert.match(bodies[3]!, new RegExp(`"replica/${replicaId}","critical":false,"state":"down"`), 'the status page shows the dead replica')
    assertNoSecrets(text, '/metrics before the kill')
    assertNoSecrets(ready.text + live.text, '/ready and /health before the kill')
  })

  it('fails the start, naming the route, when a gate names a check that does not exist', async () => {
    const { brokers, replicas } = await pools('health-typo')
    const router = new Router()
    router.on('orders/{id}', () => undefined, { qos: 1, middleware: [healthGate('primray')] })
    const app = Application.create({
      router, transport: brokers, logger: silentLogger,
      modules: [new HealthModule({ sources: [brokers, replicas], http: { port: 0 }, shutdown: false })],
    })
    await assert.rejects(app.start(), (e: unknown) =>
      e instanceof InvalidOptionError && e.field === 'healthGate on route "orders/{id}"' && /"primray".*registered: .*primary/.test(e.message))
    assert.equal(brokers.connected, false, 'nothing connected')
  })

  it('holds 200 msg/s while the primary is stopped for 5 s: every message handled exactly once after recovery, none acknowledged first', async () => {
    const { brokers, replicas, db } = await pools('health-hold')
    const completed = new Map<string, number>()
    const violations: string[] = []
    const acknowledged = new Map<string, number>()
    let recoveredAt = Number.POSITIVE_INFINITY
    let handledAfterRecovery = 0
    let wake: (() => void) | undefined
    const gate = healthGate('primary', { maxHeld: 5000, maxHoldMs: 45_000 })
    const router = new Router()
    router.on('telemetry/{device}', async (ctx) => {
      const { id } = ctx.payload as { id: string }
      await db.insertInto('gate_readings').values({ id, device: ctx.params.device }).onConflict((c) => c.column('id').doNothing()).execute()
      completed.set(id, (completed.get(id) ?? 0) + 1)
      if (Date.now() >= recoveredAt) handledAfterRecovery++
      wake?.()
    }, { qos: 1, middleware: [gate] })
    const transport = new RecordingTransport(brokers, (message, acknowledge) => {
      const { id } = JSON.parse(message.payload.toString()) as { id: string }
      if (acknowledge) acknowledged.set(id, (acknowledged.get(id) ?? 0) + 1)
      if (acknowledge && !completed.has(id)) violations.push(id)
    })
    const health = new HealthModule({ sources: [brokers, replicas], http: { port: 0 }, shutdown: false })
    const app = Application.create({ router, transport, modules: [health], logger: silentLogger, maxInFlight: 10_000 })
    await app.start()
    cleanup.push(() => app.stop())

    const publisher = await connectAsync(topology.brokers[0]!.url, { clientId: 'health-hold-publisher' })
    cleanup.push(() => publisher.endAsync())
    const ids: string[] = []
    const sent: Promise<unknown>[] = []
    const ticker = setInterval(() => {
      for (let i = 0; i < 10; i++) {
        const id = `hold-${ids.length}`
        ids.push(id)
        sent.push(publisher.publishAsync(`telemetry/dev-${ids.length % 20}`, JSON.stringify({ id }), { qos: 1 }))
      }
    }, 50)
    cleanup.push(async () => clearInterval(ticker))
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

    await sleep(1000)
    const down = new Promise<void>((resolve) => health.monitor.onDown((c) => c.name === 'primary' && resolve()))
    await topology.primary!.stop()
    const stoppedAt = Date.now()
    await down
    const outage = await getJson(`${health.server!.url}/ready`)
    assert.equal(outage.status, 503, '/ready fails while the primary is down')
    assert.equal(outage.body.checks['primary']![0]!.status, 'fail')
    await sleep(5000 - (Date.now() - stoppedAt))
    const heldBeforeRestart = gate.stats.held
    assert.ok(heldBeforeRestart > 0, 'messages are held during the outage')
    const up = new Promise<void>((resolve) =>
      health.monitor.onUp((c) => {
        if (c.name !== 'primary') return
        recoveredAt = Date.now()
        resolve()
      }),
    )
    await topology.primary!.restart()
    await up
    await sleep(1000)
    clearInterval(ticker)
    await Promise.all(sent)

    await new Promise<void>((resolve) => {
      wake = () => completed.size === ids.length && resolve()
      wake()
    })
    await app.stop()
    const twice = [...completed].filter(([, n]) => n !== 1)
    assert.deepEqual(twice, [], 'each handled exactly once')
    assert.equal(completed.size, ids.length)
    assert.ok(ids.length >= 1400, `${ids.length} published`)
    assert.deepEqual(violations, [], 'nothing acknowledged before its handler completed')
    assert.equal(acknowledged.size, ids.length, 'every message acknowledged once handled')
    assert.ok(handledAfterRecovery >= heldBeforeRestart, `${handledAfterRecovery} handled after recovery, ${heldBeforeRestart} held before`)
    assert.deepEqual(gate.stats.rejected, { unhealthy: 0, 'max-held': 0, 'max-hold-ms': 0, stopped: 0, 'spool-full': 0 })
    const admin = new pg.Client({ connectionString: topology.primary!.url })
    await admin.connect()
    const rows = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM gate_readings WHERE id LIKE 'hold-%'`)
    await admin.end()
    assert.equal(Number(rows.rows[0]!.n), ids.length, 'every reading is in the database')
  })
})
