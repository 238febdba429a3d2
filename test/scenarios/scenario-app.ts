// The application of the scenario suite, run as its own process the way a
// user runs theirs: it imports only the package's public API (by its package
// name), configures LoadBalancingModule with the brokers, the database and a
// health port and keeps every other default. Telemetry is stored with the
// number of times each reading was handled; pings are answered.
//
// Settings come as JSON in SCENARIO_APP (see ScenarioAppSettings). Reports
// JSON lines on stdout: {"event":"ready"}, {"event":"stopped"}.
import { sql, type Kysely } from 'kysely'
import {
  Application, ConsoleLogger, InjectKysely, LoadBalancingModule, Repository, Router, Write, healthGate, type BrokerPoolOptions, type MessageContext,
  type SpoolOptions,
} from 'routemq-load-balancing'

/** What the harness passes to an app process. */
export interface ScenarioAppSettings {
  readonly brokers: readonly string[]
  readonly database: string
  readonly healthPort: number
  /** Only what a scenario's shape demands (a stable client id, MQTT 3.1.1 for NATS); everything else stays at its default. */
  readonly mqtt?: Omit<BrokerPoolOptions, 'brokers'>
  /** Routes on `$share` (default); brokers without shared subscriptions (NATS) run one instance without. */
  readonly shared?: boolean
  /** Telemetry behind healthGate('primary') with this spool (the gate's defaults otherwise); no gate when absent. */
  readonly spool?: SpoolOptions
  /** The process's heap limit (`--max-old-space-size`, MB), for scenarios that bound the heap. */
  readonly heapLimitMb?: number
}

interface ScenarioDatabase {
  scenario_readings: { device: string; seq: number; conn: number; sent_at: number; copies: number }
}

@Repository()
class Readings {
  constructor(@InjectKysely() private readonly db: Kysely<ScenarioDatabase>) {}

  @Write()
  async save(device: string, seq: number, conn: number, sentAt: number): Promise<void> {
    await this.db.insertInto('scenario_readings').values({ device, seq, conn, sent_at: sentAt, copies: 1 })
      .onConflict((c) => c.columns(['device', 'seq']).doUpdateSet({ copies: sql`scenario_readings.copies + 1` })).execute()
  }
}

const settings = JSON.parse(process.env.SCENARIO_APP ?? '{}') as ScenarioAppSettings
const report = (event: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(event)}\n`)

const router = new Router()
router.group({ prefix: 'devices/{id}' }, (devices) => {
  devices.on('telemetry', async (ctx) => {
    const { seq, sentAt, conn } = ctx.payload as { seq: number; sentAt: number; conn: number }
    await ctx.container.resolve(Readings).save(ctx.params.id, seq, conn, sentAt)
  }, { qos: 1, shared: settings.shared ?? true, ...(settings.spool ? { middleware: [healthGate('primary', { spool: settings.spool })] } : {}) })
  devices.on('ping', async (ctx: MessageContext) => {
    await ctx.publish(`devices/${ctx.params.id}/pong`, ctx.raw, { qos: 1 })
  }, { qos: 1, shared: settings.shared ?? true })
})

const module = LoadBalancingModule.forRoot({
  mqtt: { ...settings.mqtt, brokers: settings.brokers },
  database: { primary: settings.database },
  health: { http: { port: settings.healthPort } },
})
const logger = new ConsoleLogger({ level: 'info' })
const app = Application.create({ router, modules: [module], logger })
await app.start()
const pool = module.parts.brokers!
// Failover mode: which broker the app is on, and how long each failover took.
pool.onActiveChange((e) => report({ event: 'active', broker: e.to }))
pool.onFailover((e) => report({ event: 'failover', from: e.from, to: e.to, gapMs: e.gapMs }))
report({ event: 'ready', pid: process.pid, mode: pool.stats.mode, active: pool.stats.active })
// The heap, every second, for scenarios that bound it.
setInterval(() => report({ event: 'heap', mb: process.memoryUsage().heapUsed / 1024 / 1024 }), 1000).unref()
