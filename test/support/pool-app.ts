// A RouteMQ application on a BrokerPool in its own process, so a test can
// SIGKILL or SIGTERM it for real. argv: <BrokerPoolOptions as JSON> <'hang' | 'finish'>.
// One shared route, jobs/{id}. Reports on stdout as JSON lines:
// {"event":"ready"}, {"event":"handling","id":...}, {"event":"handled","id":...}.
// SIGTERM stops it gracefully (the pool hands its share back).
import { Application, BrokerPool, Router, silentLogger, type BrokerPoolOptions } from '../../src/index.js'

const [options, mode] = [JSON.parse(process.argv[2]!) as BrokerPoolOptions, process.argv[3] as 'hang' | 'finish']
const report = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

const router = new Router().on('jobs/{id}', async (ctx) => {
  report({ event: 'handling', id: ctx.params.id })
  if (mode === 'hang') await new Promise(() => {})
  report({ event: 'handled', id: ctx.params.id })
}, { qos: 1, shared: true, payload: 'text' })

const app = Application.create({ router, logger: silentLogger, transport: new BrokerPool({ ...options, logger: silentLogger }) })
// Installed before "ready" is reported: a parent may signal the moment it reads it.
process.once('SIGTERM', () => {
  void app.stop().then((result) => {
    report({ event: 'stopped', ...result })
    process.exit(0)
  })
})
await app.start()
report({ event: 'ready' })
