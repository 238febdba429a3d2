// A RouteMQ application in its own process, so a test can SIGKILL it for real.
// argv: <broker url> <client id> <'hang' | 'finish'>. Reports on stdout as JSON
// lines: {"event":"ready"}, {"event":"handling",...}, {"event":"handled",...};
// stops gracefully on SIGTERM.
import { Application, Router, silentLogger } from '../../src/index.js'

const [url, clientId, mode] = process.argv.slice(2) as [string, string, 'hang' | 'finish']
const report = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

const router = new Router().on('jobs/{id}', async (ctx) => {
  report({ event: 'handling', id: ctx.params.id, body: String(ctx.payload), dup: ctx.dup })
  if (mode === 'hang') await new Promise(() => {})
  report({ event: 'handled', id: ctx.params.id })
}, { qos: 1, payload: 'text' })

const app = Application.create({
  router,
  logger: silentLogger,
  mqtt: { url, clientId, clean: false, sessionExpirySeconds: 300 },
})
// Installed before "ready" is reported: a parent may signal the moment it reads it.
process.once('SIGTERM', () => {
  void app.stop().then((result) => {
    report({ event: 'stopped', ...result })
    process.exit(0)
  })
})
await app.start()
report({ event: 'ready' })
