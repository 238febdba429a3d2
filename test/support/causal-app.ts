// One instance of a device-configuration app, in its own process, on a
// LoadBalancingModule (BrokerPool + ReplicaPool), sharing its routes with the
// other instances ($share). argv: <broker url> <primary url> <replica url> <instance name>.
// devices/{id}/config/set writes the version and answers on devices/{id}/config/ack;
// devices/{id}/config/get reads it back (read-your-writes in the device's
// consistency key, as the README shows) and answers on devices/{id}/config/value.
// Both answers say which instance handled the message. Reports {"event":"ready"}.
import 'reflect-metadata'
import { sql, type Kysely } from 'kysely'
import { Application, InjectKysely, LoadBalancingModule, ReadOnly, Repository, Router, silentLogger, Write, withConsistencyKey } from '../../src/index.js'

interface Database {
  causal_config: { device: string; version: number }
}

@Repository()
class ConfigRepository {
  constructor(@InjectKysely() private readonly db: Kysely<Database>) {}

  @Write()
  async save(device: string, version: number): Promise<void> {
    await this.db.insertInto('causal_config').values({ device, version }).onConflict((c) => c.column('device').doUpdateSet({ version })).execute()
  }

  @ReadOnly()
  async find(device: string): Promise<{ version: number; server_port: number } | undefined> {
    const { rows } = await sql<{ version: number; server_port: number }>`
      select version, inet_server_port() as server_port from causal_config where device = ${device}`.execute(this.db)
    return rows[0]
  }
}

const [brokerUrl, primaryUrl, replicaUrl, instance] = process.argv.slice(2) as [string, string, string, string]
const router = new Router({ sharedGroup: 'causal' })
router.on('devices/{id}/config/set', async (ctx) => {
  const { version } = ctx.payload as { version: number }
  const id = ctx.params.id
  await withConsistencyKey(`device:${id}`, () => ctx.container.resolve(ConfigRepository).save(id, version))
  await ctx.publish(`devices/${id}/config/ack`, { version, instance }, { qos: 1 })
}, { qos: 1, shared: true, payload: 'json' })
router.on('devices/{id}/config/get', async (ctx) => {
  const id = ctx.params.id
  const config = await withConsistencyKey(`device:${id}`, () => ctx.container.resolve(ConfigRepository).find(id))
  await ctx.publish(`devices/${id}/config/value`, { version: config?.version ?? 0, port: config?.server_port, instance }, { qos: 1 })
}, { qos: 1, shared: true })

const module = LoadBalancingModule.forRoot({
  mqtt: { brokers: [brokerUrl], clientId: `causal-${instance}` },
  database: { primary: primaryUrl, replicas: [replicaUrl] },
  health: false,
})
const app = Application.create({ router, modules: [module], logger: silentLogger })
process.once('SIGTERM', () => void app.stop().then(() => process.exit(0)))
await app.start()
process.stdout.write(`${JSON.stringify({ event: 'ready' })}\n`)
