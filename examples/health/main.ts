// A RouteMQ app with health monitoring: broker pool, replica pool, health
// endpoints, a gated route and graceful shutdown.
//
//   node dist/examples/health/main.js
//
// Configuration from the environment (without MQTT_BROKERS it starts a local
// topology of its own: one Mosquitto, a PostgreSQL primary and one replica):
//   MQTT_BROKERS            comma-separated broker URLs
//   DATABASE_PRIMARY_URL    the primary's URL
//   DATABASE_REPLICA_URLS   comma-separated replica URLs (optional)
//   HEALTH_HOST, HEALTH_PORT  where /health, /ready and /metrics listen (127.0.0.1:9464)
//   HEALTH_DRAIN_DELAY_MS   between failing /ready and stopping, on SIGTERM (5000)
//   JOB_MS                  how long each job's work takes (1000)
//
// Publish to jobs/<id>: the app answers jobs/<id>/started, works JOB_MS,
// records the job on the primary, then answers jobs/<id>/done. While the
// primary is down, jobs wait (healthGate) instead of failing. On SIGTERM,
// /ready fails at once, jobs keep being handled for the drain delay, then
// the app stops taking messages, finishes the jobs in flight and exits.
import { Kysely, sql } from 'kysely'
import {
  Application, BrokerPool, ConsoleLogger, healthGate, HealthModule, InvalidOptionError, migrateToLatest, ReplicaPool, ReplicatedPostgresDialect,
  Router, type RouteMqModule,
} from '../../src/index.js'
import { startTopology } from '../../src/testing/index.js'

interface Database {
  jobs: { id: string; finished_at: Date }
}

const logger = new ConsoleLogger({ level: 'info' })

function list(name: string): string[] {
  return (process.env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean)
}

function milliseconds(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0) throw new InvalidOptionError(name, `must be a number of milliseconds, not ${JSON.stringify(raw)}`)
  return value
}

async function services(): Promise<{ brokers: string[]; primary: string; replicas: string[]; modules: RouteMqModule[] }> {
  const brokers = list('MQTT_BROKERS')
  if (brokers.length > 0) {
    const primary = process.env['DATABASE_PRIMARY_URL']
    if (!primary) throw new InvalidOptionError('DATABASE_PRIMARY_URL', 'set it to the primary PostgreSQL URL')
    return { brokers, primary, replicas: list('DATABASE_REPLICA_URLS'), modules: [] }
  }
  logger.info('MQTT_BROKERS is not set: starting a local Mosquitto, PostgreSQL primary and replica')
  const topology = await startTopology({ brokers: 1, replicas: 1 })
  await migrateToLatest(topology.primary!.url)
  // First in the module list, so it stops last, after the app let go of it.
  const local: RouteMqModule = { name: 'local-topology', register() {}, stop: () => topology.stop() }
  return { brokers: topology.brokers.map((b) => b.url), primary: topology.primary!.url, replicas: topology.replicas.map((r) => r.url), modules: [local] }
}

async function main(): Promise<void> {
  const jobMs = milliseconds('JOB_MS', 1000)
  const port = Number(process.env['HEALTH_PORT'] ?? 9464)
  const { brokers: brokerUrls, primary, replicas: replicaUrls, modules } = await services()

  const brokers = new BrokerPool({ brokers: brokerUrls, clientId: `health-example-${process.pid}`, logger })
  const replicas = await ReplicaPool.create({ primary, replicas: replicaUrls, logger })
  const db = new Kysely<Database>({ dialect: new ReplicatedPostgresDialect(replicas) })
  await sql`CREATE TABLE IF NOT EXISTS jobs (id text PRIMARY KEY, finished_at timestamptz NOT NULL)`.execute(db)

  const router = new Router()
  router.on('jobs/{id}', async (ctx) => {
    const { id } = ctx.params
    await ctx.publish(`jobs/${id}/started`, { id }, { qos: 1 })
    await new Promise((resolve) => setTimeout(resolve, jobMs))
    await db.insertInto('jobs').values({ id, finished_at: new Date() }).onConflict((c) => c.column('id').doUpdateSet({ finished_at: new Date() })).execute()
    await ctx.publish(`jobs/${id}/done`, { id }, { qos: 1 })
  }, { qos: 1, middleware: [healthGate('primary', { maxHoldMs: 120_000 })] })

  const closeDatabase: RouteMqModule = { name: 'database', register() {}, stop: () => db.destroy() }
  const health = new HealthModule({
    sources: [brokers, replicas],
    http: { host: process.env['HEALTH_HOST'] ?? '127.0.0.1', port },
    shutdown: { drainDelayMs: milliseconds('HEALTH_DRAIN_DELAY_MS', 5000) },
  })
  const app = Application.create({ router, transport: brokers, logger, modules: [...modules, closeDatabase, health] })
  await app.start()
  logger.info('publish to jobs/<id>; GET /health, /ready, /metrics', { health: health.server?.url })
}

main().catch((error: unknown) => {
  logger.error('the example failed to start', { error })
  process.exit(1)
})
