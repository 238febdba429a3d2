// npm run bench:router: in-process dispatch through the kernel with 100 routes
// and 5 pass-through middleware. A dispatch here is the whole kernel path: trie
// match, context, payload decoding, message scope, middleware, handler, settle.
import { MessageDispatcher, Router, silentLogger, type MiddlewareFunction } from '../../src/index.js'
import { inbound, rootContainerForTests } from '../support/inbound-message.js'
import { printTable } from '../support/print-table.js'

const ROUTES = 100
const MIDDLEWARE = 5
const LATENCY_SAMPLES = 200_000
const THROUGHPUT_MESSAGES = 500_000
const BATCH = 1000

const passThrough: MiddlewareFunction = (ctx, next) => next(ctx)
const router = new Router()
for (let i = 0; i < ROUTES / 2; i++) {
  router.on(`site${i}/devices/{id}/telemetry`, () => undefined, { qos: 1, middleware: Array(MIDDLEWARE).fill(passThrough) })
  router.on(`site${i}/devices/{id}/status/#`, () => undefined, { qos: 1, middleware: Array(MIDDLEWARE).fill(passThrough) })
}
const topics = Array.from({ length: ROUTES }, (_, i) =>
  i % 2 === 0 ? `site${i >> 1}/devices/d${i}/telemetry` : `site${i >> 1}/devices/d${i}/status/battery`,
)
const body = Buffer.from('{"celsius":21.5,"seq":1}')
const dispatcher = new MessageDispatcher({
  router, container: rootContainerForTests(), publish: async () => {}, logger: silentLogger,
  onError: 'ack', maxInFlight: 1_000_000, maxQueued: 1_000_000, ordering: 'topic',
})

async function dispatchOne(topic: string): Promise<void> {
  const message = inbound(topic, body)
  dispatcher.receive(message)
  await message.settled
}

function median(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort()
  return sorted[sorted.length >> 1]!
}

function percentile(values: Float64Array, p: number): number {
  const sorted = Float64Array.from(values).sort()
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
}

for (let i = 0; i < 50_000; i++) await dispatchOne(topics[i % ROUTES]!)

const matchSamples = new Float64Array(LATENCY_SAMPLES)
for (let i = 0; i < LATENCY_SAMPLES; i++) {
  const start = process.hrtime.bigint()
  router.match(topics[i % ROUTES]!)
  matchSamples[i] = Number(process.hrtime.bigint() - start) / 1000
}

const samples = new Float64Array(LATENCY_SAMPLES)
for (let i = 0; i < LATENCY_SAMPLES; i++) {
  const start = process.hrtime.bigint()
  await dispatchOne(topics[i % ROUTES]!)
  samples[i] = Number(process.hrtime.bigint() - start) / 1000
}

const started = process.hrtime.bigint()
for (let sent = 0; sent < THROUGHPUT_MESSAGES; sent += BATCH) {
  const batch: Promise<void>[] = []
  for (let j = 0; j < BATCH; j++) batch.push(dispatchOne(topics[(sent + j) % ROUTES]!))
  await Promise.all(batch)
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9
const stats = dispatcher.stats
if (stats.handled !== 50_000 + LATENCY_SAMPLES + THROUGHPUT_MESSAGES || stats.failed !== 0) {
  throw new Error(`benchmark miscounted: ${JSON.stringify(stats)}`)
}

const dispatchPerSecond = Math.round(THROUGHPUT_MESSAGES / seconds)
const medianUs = Number(median(samples).toFixed(3))
printTable(`Router dispatch: ${ROUTES} routes, ${MIDDLEWARE} pass-through middleware, node ${process.version}`, [
  ['measure', 'value'],
  ['trie match only, median', `${median(matchSamples).toFixed(3)} µs`],
  ['full dispatch, median', `${medianUs} µs`],
  ['full dispatch, p99', `${percentile(samples, 0.99).toFixed(3)} µs`],
  [`throughput (batches of ${BATCH})`, `${dispatchPerSecond.toLocaleString('en')} msg/s`],
  ['RouteMQ (Python) reference', '~150 µs per dispatch'],
])
console.log(JSON.stringify({ dispatch_per_s: dispatchPerSecond, median_us: medianUs }))
