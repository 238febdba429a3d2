// A first-hour mistake, run in its own process (a class taking @InjectKysely() is remembered for the whole process):
// a repository without @Repository(). Prints the error app.start() gives, as JSON.
import type { Kysely } from 'kysely'
import { Application, InjectKysely, LoadBalancingModule, Router, silentLogger } from '../../src/index.js'

class Readings {
  constructor(@InjectKysely() readonly db: Kysely<unknown>) {}
}

const router = new Router().on('devices/{id}/telemetry', (ctx) => ctx.container.resolve(Readings), { qos: 1 })
const app = Application.create({
  router, logger: silentLogger,
  modules: [LoadBalancingModule.fromEnv({ ROUTEMQ_MQTT_BROKERS: process.argv[2]!, ROUTEMQ_MQTT_MODE: 'all', ROUTEMQ_HEALTH_ENABLED: 'false' })],
})
try {
  await app.start()
  console.log(JSON.stringify({ started: true }))
  await app.stop()
} catch (error) {
  const e = error as Error & { code?: string }
  console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message }))
}
