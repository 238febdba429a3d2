import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { connectAsync, type MqttClient } from 'mqtt'
import { freePort, startTopology, type Topology } from '../../src/testing/index.js'

const EXAMPLE = fileURLToPath(new URL('../../examples/health/main.js', import.meta.url))

/** The example app in its own process; its log lines (stderr) can be awaited. */
function startExample(env: Record<string, string>): { child: ChildProcess; line: (pattern: RegExp) => Promise<string>; log: string[] } {
  const child = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  const log: string[] = []
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = []
  createInterface({ input: child.stderr }).on('line', (text) => {
    log.push(text)
    for (const waiter of [...waiters]) {
      if (waiter.pattern.test(text)) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(text)
      }
    }
  })
  const exited = once(child, 'exit')
  const line = (pattern: RegExp) => {
    const seen = log.find((text) => pattern.test(text))
    if (seen) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      waiters.push({ pattern, resolve })
      void exited.then(() => reject(new Error(`the example exited before logging ${pattern}:\n${log.join('\n')}`)))
    })
  }
  return { child, line, log }
}

describe('Graceful shutdown of the health example app', function () {
  this.timeout(60_000)
  let topology: Topology
  let devices: MqttClient | undefined
  let child: ChildProcess | undefined

  before(async () => {
    topology = await startTopology({ brokers: 1, replicas: 1 })
  })
  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await devices?.endAsync()
  })
  after(async () => {
    await topology?.stop()
  })

  it('on SIGTERM fails /ready before the transport closes, finishes the jobs in flight, then exits 0', async () => {
    const port = await freePort()
    const example = startExample({
      MQTT_BROKERS: topology.brokers[0]!.url,
      DATABASE_PRIMARY_URL: topology.primary!.url,
      DATABASE_REPLICA_URLS: topology.replicas[0]!.url,
      HEALTH_PORT: String(port),
      HEALTH_DRAIN_DELAY_MS: '300',
      JOB_MS: '1500',
    })
    child = example.child
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    await example.line(/application started/)
    const ready = `http://127.0.0.1:${port}/ready`
    assert.equal((await fetch(ready)).status, 200)

    devices = await connectAsync(topology.brokers[0]!.url, { clientId: 'shutdown-devices' })
    const started = new Set<string>()
    const done = new Map<string, number>()
    let onMessage: (() => void) | undefined
    devices.on('message', (topic) => {
      const [, id, stage] = topic.split('/')
      if (stage === 'started') started.add(id!)
      if (stage === 'done') done.set(id!, performance.now())
      onMessage?.()
    })
    await devices.subscribeAsync({ 'jobs/+/started': { qos: 1 }, 'jobs/+/done': { qos: 1 } })
    const jobs = ['a', 'b', 'c']
    const allStarted = new Promise<void>((resolve) => (onMessage = () => started.size === jobs.length && resolve()))
    for (const id of jobs) await devices.publishAsync(`jobs/${id}`, '', { qos: 1 })
    await allStarted
    assert.equal(done.size, 0, 'the jobs are in flight')

    const allDone = new Promise<void>((resolve) => (onMessage = () => done.size === jobs.length && resolve()))
    child.kill('SIGTERM')
    let readyFailedAt: number | undefined
    // Readiness is what a balancer polls; poll it the same way, briefly.
    for (const deadline = Date.now() + 5000; readyFailedAt === undefined && Date.now() < deadline;) {
      const response = await fetch(ready)
      const body = (await response.json()) as { checks: Record<string, unknown> }
      if (response.status === 503) {
        readyFailedAt = performance.now()
        assert.ok(body.checks['shutdown'], 'it says it is shutting down')
      } else {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    }
    assert.ok(readyFailedAt !== undefined, '/ready failed after SIGTERM')
    assert.equal(done.size, 0, '/ready failed while the jobs were still running')

    await allDone
    for (const id of jobs) assert.ok(done.get(id)! > readyFailedAt, `job ${id} was answered through the transport after /ready failed`)
    const [code, signal] = await exited
    assert.deepEqual([code, signal], [0, null])
    const order = (pattern: RegExp) => example.log.findIndex((text) => pattern.test(text))
    assert.ok(order(/SIGTERM: readiness now fails/) >= 0, example.log.join('\n'))
    assert.ok(order(/SIGTERM: readiness now fails/) < order(/application stopped/))
    assert.match(example.log[order(/application stopped/)]!, /handled=3/)
    assert.match(example.log[order(/application stopped/)]!, /failed=0/)
  })
})
