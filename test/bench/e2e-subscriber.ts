// One subscriber of `npm run bench:e2e`, in a process of its own so that
// neither runs with the other's state (AsyncLocalStorage's promise hooks stay
// on for a whole process once used; JIT and heap are its own). Started by the
// bench with a JSON config as its argument, it subscribes to the readings
// under the config's topic prefix, stores each one, and talks to the bench
// over the IPC channel: 'ready' once subscribed, 'done' when the number of
// readings it was told to expect have been stored (with the CPU time the
// process used meanwhile), 'progress' every 500 ms,
// 'stopped' after a 'stop'. It exits when the bench goes away.
//
// - ours: the README's quick start. LoadBalancingModule.fromEnv (broker pool,
//   replica pool, Kysely over ReplicatedPostgresDialect, health and metrics
//   on their defaults), a shared route behind healthGate('primary') whose
//   handler calls a @Write() repository method that inserts the reading. The
//   kernel acknowledges a message once its handler settled.
// - hand-written: MQTT.js and a pg.Pool of the same size. MQTT.js v5 defers a
//   PUBACK only through `customHandleAcks`, whose callback also holds back
//   the next packet of that connection, so one connection handles one
//   message at a time; to use its pool the subscriber opens as many MQTT
//   connections in one `$share` group, each acknowledging a message once its
//   INSERT has committed.
import type { Generated, Kysely } from 'kysely'
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt'
import pg from 'pg'
import { Application, ConsoleLogger, InjectKysely, LoadBalancingModule, Repository, Router, Write, healthGate } from '../../src/index.js'

export type SubscriberName = 'ours' | 'hand-written'

/** What the bench passes as the process's argument. */
export interface SubscriberConfig {
  readonly name: SubscriberName
  readonly brokerUrl: string
  readonly primaryUrl: string
  readonly replicaUrls: readonly string[]
  readonly topicPrefix: string
  /** Connections to the primary: the replica pool's default, and the hand-written pg.Pool's size. */
  readonly poolSize: number
}

/** Messages from the bench. */
export type SubscriberCommand = { readonly type: 'expect'; readonly count: number } | { readonly type: 'stop' }

/** Messages to the bench. */
export type SubscriberReport =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly stored: number }
  /** `cpuMicros`: user and system CPU time of this process since the 'expect'. */
  | { readonly type: 'done'; readonly cpuMicros: number }
  | { readonly type: 'stopped' }

/** The body of a reading, as the devices send it; `sentAt` is epoch milliseconds. */
export interface Reading {
  readonly id: number
  readonly celsius: number
  readonly sentAt: number
}

interface BenchDatabase {
  e2e_readings: { id: number; device: string; celsius: number; sent_at: number; stored_at: Generated<Date> }
}

interface Subscriber {
  stop(): Promise<void>
}

@Repository()
class Readings {
  constructor(@InjectKysely() private readonly db: Kysely<BenchDatabase>) {}

  @Write()
  async save(device: string, reading: Reading): Promise<void> {
    await this.db.insertInto('e2e_readings').values({ id: reading.id, device, celsius: reading.celsius, sent_at: reading.sentAt }).execute()
  }
}

async function startOurs(config: SubscriberConfig, onStored: () => void): Promise<Subscriber> {
  const router = new Router()
  router.group({ prefix: `${config.topicPrefix}/devices/{id}` }, (devices) => {
    devices.on('telemetry', async (ctx) => {
      await ctx.container.resolve(Readings).save(ctx.params.id, ctx.payload as Reading)
      onStored()
    }, { qos: 1, shared: true, middleware: [healthGate('primary')] })
  })
  const env = {
    ROUTEMQ_MQTT_BROKERS: config.brokerUrl,
    // A stable id, as a StatefulSet gives: each run resumes its own session rather than adopting the last run's.
    ROUTEMQ_MQTT_CLIENT_ID: 'e2e-bench-app',
    ROUTEMQ_DATABASE_URL: config.primaryUrl,
    ...(config.replicaUrls.length > 0 ? { ROUTEMQ_DATABASE_REPLICA_URLS: config.replicaUrls.join(',') } : {}),
    ROUTEMQ_DATABASE_POOL_SIZE: String(config.poolSize),
    ROUTEMQ_DATABASE_MIGRATE: 'true',
    ROUTEMQ_HEALTH_PORT: '0',
    // ROUTEMQ_* variables the bench was run with come on top (ROUTEMQ_DATABASE_CONSISTENCY=off, ...).
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('ROUTEMQ_'))),
  }
  const logger = new ConsoleLogger({ level: 'warn' })
  const app = Application.create({ router, modules: [LoadBalancingModule.fromEnv(env, { logger })], logger })
  await app.start()
  return { stop: async () => void (await app.stop()) }
}

const INSERT = 'insert into "e2e_readings" ("id", "device", "celsius", "sent_at") values ($1, $2, $3, $4)'

async function startHandWritten(config: SubscriberConfig, onStored: () => void): Promise<Subscriber> {
  const db = new pg.Pool({ connectionString: config.primaryUrl, max: config.poolSize })
  db.on('error', (error) => process.stderr.write(`hand-written: idle connection failed: ${error.message}\n`))
  const options: IClientOptions = {
    protocolVersion: 5,
    customHandleAcks: (topic, message, _packet, done) => {
      const reading = JSON.parse(message.toString()) as Reading
      db.query(INSERT, [reading.id, topic.split('/').at(-2), reading.celsius, reading.sentAt]).then(
        () => {
          onStored()
          done(0)
        },
        (error: unknown) => {
          process.stderr.write(`hand-written: insert failed: ${String(error)}\n`)
          done(0x80)
        },
      )
    },
  }
  const clients: MqttClient[] = await Promise.all(Array.from({ length: config.poolSize }, (_, n) => connectAsync(config.brokerUrl, { ...options, clientId: `e2e-hand-written-${n}` })))
  await Promise.all(clients.map((client) => client.subscribeAsync(`$share/hand-written/${config.topicPrefix}/devices/+/telemetry`, { qos: 1 })))
  return {
    stop: async () => {
      await Promise.all(clients.map((client) => client.endAsync()))
      await db.end()
    },
  }
}

const config = JSON.parse(process.argv[2]!) as SubscriberConfig
const report = (message: SubscriberReport): void => void process.send!(message)
let stored = 0
let expected = Number.POSITIVE_INFINITY
let cpuAtExpect = process.cpuUsage()
const onStored = (): void => {
  if (++stored !== expected) return
  const cpu = process.cpuUsage(cpuAtExpect)
  report({ type: 'done', cpuMicros: cpu.user + cpu.system })
}
const subscriber = await (config.name === 'ours' ? startOurs : startHandWritten)(config, onStored)
const progress = setInterval(() => report({ type: 'progress', stored }), 500)
let stopping: Promise<void> | undefined
const stop = (): Promise<void> => {
  clearInterval(progress)
  stopping ??= subscriber.stop()
  return stopping
}
process.on('message', (command: SubscriberCommand) => {
  if (command.type === 'stop') {
    void stop().finally(() => {
      report({ type: 'stopped' })
      process.disconnect()
    })
    return
  }
  stored = 0
  expected = command.count
  cpuAtExpect = process.cpuUsage()
})
// The bench went away without a 'stop' (or after it): nothing else keeps this process.
process.on('disconnect', () => void stop().finally(() => process.exit()))
report({ type: 'ready' })
