// `npm start`: a RouteMQ application on a real, local Mosquitto. Two app
// instances split every route's traffic through shared subscriptions; simulated
// devices publish telemetry, say hello and get a reply; a poison message ends
// on the dead-letter topic. Prints what each instance handled, then exits 0
// only if every message was accounted for.
import { connectAsync } from 'mqtt'
import { Application, ConsoleLogger, Router, type MessageContext, type MiddlewareFunction } from '../../src/index.js'
import { startTopology } from '../../src/testing/index.js'

const DEVICES = 5
const READINGS_PER_DEVICE = 20
const JOBS = 40

interface Tally {
  telemetry: number
  hellos: number
  jobs: number
  failed: number
}

const timing: MiddlewareFunction = async (ctx, next) => {
  const started = performance.now()
  try {
    return await next(ctx)
  } finally {
    latencies.push(performance.now() - started)
  }
}
const latencies: number[] = []

function routes(tally: Tally): Router {
  const router = new Router({ sharedGroup: 'workers' })
  router.group({ prefix: 'devices/{id}', middleware: [timing] }, (device) => {
    device.on('telemetry', (ctx) => {
      const reading = ctx.payload as { celsius: number }
      if (typeof reading.celsius !== 'number') throw new Error(`device ${ctx.params.id} sent no temperature`)
      tally.telemetry++
    }, { qos: 1, payload: 'json', shared: true })
    device.on('hello', async (ctx: MessageContext) => {
      tally.hellos++
      await ctx.publish(`devices/${ctx.params.id}/welcome`, { greeting: `hello ${ctx.params.id}` }, { qos: 1 })
    }, { qos: 1, shared: true })
  })
  router.on('jobs/{kind}', () => {
    tally.jobs++
  }, { qos: 1, shared: true })
  return router
}

async function main(): Promise<number> {
  const started = performance.now()
  console.log('Starting a local Mosquitto broker...')
  const topology = await startTopology({ brokers: 1 })
  const url = topology.brokers[0]!.url
  const logger = new ConsoleLogger({ level: 'warn' })
  const tallies: Tally[] = [0, 1].map(() => ({ telemetry: 0, hellos: 0, jobs: 0, failed: 0 }))
  const apps = tallies.map((tally, i) =>
    Application.create({
      router: routes(tally),
      logger,
      mqtt: { url, clientId: `quickstart-app-${i + 1}` },
      onError: { deadLetter: 'dead-letter' },
    }),
  )
  const devices = await connectAsync(url, { clientId: 'quickstart-devices', protocolVersion: 5 })
  try {
    for (const app of apps) await app.start()
    console.log(`2 app instances connected to ${url}; publishing...`)
    console.log('(one telemetry message is malformed on purpose: expect one "handler failed" line on stderr)')

    const welcomes = new Set<string>()
    const deadLetters: string[] = []
    devices.on('message', (topic) => {
      if (topic.startsWith('dead-letter/')) deadLetters.push(topic)
      else welcomes.add(topic)
    })
    await devices.subscribeAsync({ 'devices/+/welcome': { qos: 1 }, 'dead-letter/#': { qos: 1 } })

    const sends: Promise<unknown>[] = []
    for (let d = 1; d <= DEVICES; d++) {
      sends.push(devices.publishAsync(`devices/dev-${d}/hello`, '', { qos: 1 }))
      for (let r = 0; r < READINGS_PER_DEVICE; r++) {
        sends.push(devices.publishAsync(`devices/dev-${d}/telemetry`, JSON.stringify({ celsius: 20 + r / 10 }), { qos: 1 }))
      }
    }
    for (let j = 0; j < JOBS; j++) sends.push(devices.publishAsync(`jobs/${j % 2 ? 'resize' : 'encode'}`, `job ${j}`, { qos: 1 }))
    sends.push(devices.publishAsync('devices/dev-1/telemetry', '{"celsius": "warm"}', { qos: 1 }))
    await Promise.all(sends)

    // Stopping drains: every message taken is handled and acknowledged before it returns.
    const expected = DEVICES * READINGS_PER_DEVICE + DEVICES + JOBS + 1
    await waitUntil(() => apps.reduce((sum, app) => sum + app.stats.handled + app.stats.failed, 0) >= expected && deadLetters.length >= 1 && welcomes.size >= DEVICES)
    for (const app of apps) await app.stop()

    const rows = apps.map((app, i) => [
      `app-${i + 1}`, tallies[i]!.telemetry, tallies[i]!.hellos, tallies[i]!.jobs, app.stats.failed, app.stats.deadLettered,
    ])
    console.log('\ninstance  telemetry  hello  jobs    failed  dead-lettered')
    for (const row of rows) console.log(row.map((cell, c) => String(cell).padEnd([10, 11, 7, 8, 8, 13][c]!)).join(''))
    const sorted = [...latencies].sort((a, b) => a - b)
    console.log(`\nwelcome replies received: ${welcomes.size}/${DEVICES}`)
    console.log(`dead-letter topic got: ${deadLetters.join(', ')}`)
    console.log(`handler time p50 ${sorted[sorted.length >> 1]!.toFixed(2)} ms, p99 ${sorted[Math.floor(sorted.length * 0.99)]!.toFixed(2)} ms`)

    const telemetry = tallies.reduce((s, t) => s + t.telemetry, 0)
    const jobs = tallies.reduce((s, t) => s + t.jobs, 0)
    const ok = telemetry === DEVICES * READINGS_PER_DEVICE && jobs === JOBS && welcomes.size === DEVICES && deadLetters.length === 1
    console.log(`\n${ok ? 'OK' : 'MISMATCH'}: ${telemetry} readings, ${jobs} jobs, ${deadLetters.length} dead letter, in ${((performance.now() - started) / 1000).toFixed(1)} s`)
    return ok ? 0 : 1
  } finally {
    await devices.endAsync()
    for (const app of apps) await app.stop()
    await topology.stop()
  }
}

// The app's own counters change as messages are handled; poll them on a short
// timer, bounded, since there is no single event for "all of them".
async function waitUntil(done: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the messages to be handled')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

process.exitCode = await main()
