import assert from 'node:assert/strict'
import { Kysely, sql } from 'kysely'
import { connectAsync } from 'mqtt'
import { Application, BrokerPool, ConsoleLogger, Router } from '../../src/index.js'
import { readOnly, ReplicaPool, ReplicatedPostgresDialect } from '../../plugins/kysely/index.js'
import { startTopology, type Topology } from '../../src/testing/index.js'

interface Entry {
  readonly level: string
  readonly msg: string
  readonly count?: number
  readonly [field: string]: unknown
}

/** A JSON logger whose entries the test reads, and a way to wait for one. */
function recordingLogger(): { logger: ConsoleLogger; entries: Entry[]; next: (msg: string) => Promise<Entry> } {
  const entries: Entry[] = []
  const waiting: { msg: string; resolve: (entry: Entry) => void }[] = []
  const logger = new ConsoleLogger({
    level: 'info',
    format: 'json',
    write: (line) => {
      const entry = JSON.parse(line) as Entry
      entries.push(entry)
      for (const w of waiting.filter((w) => w.msg === entry.msg)) {
        waiting.splice(waiting.indexOf(w), 1)
        w.resolve(entry)
      }
    },
  })
  const next = (msg: string) => new Promise<Entry>((resolve) => waiting.push({ msg, resolve }))
  return { logger, entries, next }
}

describe('Logs of failures under load', function () {
  this.timeout(90_000)
  let topology: Topology | undefined

  after(async () => {
    await topology?.stop()
  })

  it('are a few lines at the right levels, the storm of failed queries summarised once it is over', async () => {
    topology = await startTopology({ replicas: 1 })
    const { logger, entries, next } = recordingLogger()
    const pool = await ReplicaPool.create({
      primary: topology.primary!.url, replicas: [topology.replicas[0]!.url], logger, connectTimeoutMs: 1000, health: { probeIntervalMs: 200 }, heartbeatTable: false,
    })
    const db = new Kysely<Record<string, never>>({ dialect: new ReplicatedPostgresDialect(pool) })
    try {
      const replicaHealthy = entries.find((e) => e.msg === 'replica healthy')
      assert.equal(replicaHealthy?.level, 'info', 'a replica healthy at start is good news, not a warning')
      assert.ok(!entries.some((e) => e.level === 'warn' || e.level === 'error'), JSON.stringify(entries))

      let failedQueries = 0
      let running = true
      const load = Array.from({ length: 20 }, async () => {
        while (running) {
          await sql`select 1`.execute(db).catch(() => failedQueries++)
          await readOnly(() => sql`select 1`.execute(db))
          await new Promise((resolve) => setImmediate(resolve))
        }
      })
      const start = entries.length
      const noPrimary = next('no primary is available')
      await topology.primary!.stop()
      assert.equal((await noPrimary).level, 'error', 'nothing left to write to')
      // The load runs on against the stopped primary: each write fails, as each did in the storm.
      const failedBefore = failedQueries
      await new Promise((resolve) => setTimeout(resolve, 1500))
      assert.ok(failedQueries - failedBefore > 50, `only ${failedQueries - failedBefore} queries failed while the primary was down`)
      const available = next('primary available')
      await topology.primary!.restart()
      assert.equal((await available).level, 'info')
      running = false
      await Promise.all(load)

      const episode = entries.slice(start)
      const loud = episode.filter((e) => e.level === 'warn' || e.level === 'error')
      assert.ok(loud.length <= 5, `${loud.length} WARN/ERROR lines:\n${loud.map((e) => `${e.level} ${e.msg}`).join('\n')}`)
      const lost = episode.filter((e) => e.msg.startsWith('a query lost its connection to the primary'))
      assert.ok(lost.length >= 1 && lost.length <= 2, lost.map((e) => e.msg).join('\n'))
      assert.ok(lost.every((e) => e.level === 'warn'))
      assert.ok(typeof (lost[0]!.error as { message?: unknown }).message === 'string', 'the first line carries the error')
      // Every connection-level failure after the first is in the count, reported before the recovery line.
      if (lost.length === 2) {
        assert.match(lost[1]!.msg, /\(\d+ more in [\d.]+ s\)$/)
        assert.ok(lost[1]!.count! > 0)
        assert.ok(episode.indexOf(lost[1]!) < episode.findIndex((e) => e.msg === 'primary available'))
      }
    } finally {
      await db.destroy()
    }
  })

  it('of a broker killed while messages flow are a few lines: down at WARN, up again at INFO', async () => {
    await topology?.stop()
    topology = await startTopology({ brokers: 2 })
    const { logger, entries, next } = recordingLogger()
    let handled = 0
    const router = new Router().on('devices/{id}/telemetry', () => void handled++, { qos: 1 })
    const app = Application.create({
      router, logger, transport: new BrokerPool({ brokers: topology.brokers.map((b) => b.url), mode: 'all', topologyCheck: false, clientId: 'log-storms', logger }),
    })
    await app.start()
    const devices = await Promise.all(topology.brokers.map((b, i) => connectAsync(b.url, { clientId: `log-device-${i}`, reconnectPeriod: 100 })))
    try {
      let running = true
      const load = devices.map(async (device, i) => {
        while (running) {
          if (device.connected) device.publish(`devices/d${i}/telemetry`, '{}', { qos: 1 })
          await new Promise((resolve) => setTimeout(resolve, 2))
        }
      })
      const start = entries.length
      const down = next('broker down')
      await topology.brokers[0]!.kill()
      assert.equal((await down).level, 'warn')
      const handledBefore = handled
      await new Promise((resolve) => setTimeout(resolve, 1500))
      assert.ok(handled - handledBefore > 50, 'messages kept flowing through the other broker')
      const up = next('broker up')
      await topology.brokers[0]!.restart()
      assert.equal((await up).level, 'info')
      running = false
      await Promise.all(load)
      const loud = entries.slice(start).filter((e) => e.level === 'warn' || e.level === 'error')
      assert.ok(loud.length <= 5, `${loud.length} WARN/ERROR lines:\n${loud.map((e) => `${e.level} ${e.msg}`).join('\n')}`)
    } finally {
      await Promise.all(devices.map((d) => d.endAsync()))
      await app.stop()
    }
  })
})
