// The README's install and quick start, run as a new user would: the packed
// tarball installed by the install block, the quick-start files written where
// their markers say, `tsc --init`'s settings plus only the README's, then the
// run block against a launched Mosquitto, primary and replica, and the device
// block, until the reading is in PostgreSQL. A README edit that breaks a
// first hour breaks this test.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import mqtt from 'mqtt'
import pg from 'pg'
import ts from 'typescript'
import { freePort, startTopology, type Topology } from '../../src/testing/index.js'
import { npmEnv, packedProject, run, type PackedProject } from '../support/packed-project.js'
import { pollUntil } from '../support/poll-until.js'
import { readmeBlock } from '../support/readme-blocks.js'
import { ensureDebianPackages } from '../support/system-packages.js'

describe('the README quick start, in a new project', function () {
  this.timeout(90_000)
  let project: PackedProject
  let topology: Topology
  let app: ChildProcess | undefined
  let appOutput = ''

  before(async function () {
    this.timeout(300_000)
    // The run and device blocks use the command-line clients.
    ensureDebianPackages({ '/usr/bin/psql': 'postgresql-client', '/usr/bin/mosquitto_pub': 'mosquitto-clients' })
    ;[project, topology] = await Promise.all([packedProject(), startTopology({ brokers: 1, replicas: 1 })])
  })

  after(async () => {
    if (app && app.exitCode === null && app.signalCode === null) process.kill(-app.pid!, 'SIGKILL')
    await topology?.stop()
  })

  it('compiles with the settings of tsc --init plus the README\'s, without an error', async () => {
    for (const block of project.blocks.filter((block) => block.kind === 'file')) {
      const file = join(project.dir, block.path!)
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, block.text)
    }
    const tsconfigPath = join(project.dir, 'tsconfig.json')
    const generated = ts.parseConfigFileTextToJson(tsconfigPath, readFileSync(tsconfigPath, 'utf8'))
    assert.equal(generated.error, undefined, 'tsc --init wrote a tsconfig.json TypeScript cannot read')
    const added = JSON.parse(readmeBlock(project.blocks, 'tsconfig').text) as { compilerOptions: object }
    const tsconfig = { ...generated.config, compilerOptions: { ...generated.config.compilerOptions, ...added.compilerOptions } }
    writeFileSync(tsconfigPath, JSON.stringify(tsconfig, null, 2))
    await run('npx', ['tsc', '-p', '.'], { cwd: project.dir, env: npmEnv() })
  })

  it('stores a device\'s reading and answers its config/get, started as the README says', async () => {
    const [broker, primary, replica] = [topology.brokers[0]!, topology.primary!, topology.replicas[0]!]
    const ours: Record<string, string> = {
      'mqtt://127.0.0.1:1883': broker.url,
      'postgres://postgres@127.0.0.1:5432/postgres': primary.url,
      'postgres://postgres@127.0.0.1:5433/postgres': replica.url,
    }
    const runBlock = readmeBlock(project.blocks, 'run').text
    const deviceBlock = readmeBlock(project.blocks, 'device').text
    const localise = (text: string): string => Object.entries(ours).reduce((result, [readme, launched]) => result.replaceAll(readme, launched), text)
    for (const address of Object.keys(ours)) {
      assert.ok(runBlock.includes(address) || deviceBlock.includes(address), `the run and device blocks no longer name ${address}, which this test replaces with the launched server's`)
    }

    // The one setting not from the README: the health port, free rather than 9464, as other tests run alongside.
    const healthPort = await freePort()
    const env = Object.fromEntries(Object.entries(npmEnv({ ROUTEMQ_HEALTH_PORT: String(healthPort) })).filter(([name]) => !name.startsWith('ROUTEMQ_') || name === 'ROUTEMQ_HEALTH_PORT'))
    app = spawn('bash', ['-euo', 'pipefail', '-c', localise(runBlock)], { cwd: project.dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    const collect = (chunk: Buffer): void => {
      appOutput = (appOutput + chunk.toString()).slice(-20_000)
    }
    app.stdout!.on('data', collect)
    app.stderr!.on('data', collect)
    const exited = once(app, 'exit')

    await pollUntil(async () => {
      assert.equal(app!.exitCode ?? app!.signalCode, null, `the run block ended before the app was ready:\n${appOutput}`)
      const ready = await fetch(`http://127.0.0.1:${healthPort}/ready`).then((response) => response.ok, () => false)
      return ready
    }, { timeoutMs: 60_000, everyMs: 250 })

    await run('bash', ['-euo', 'pipefail', '-c', localise(deviceBlock)], { cwd: project.dir })
    const db = new pg.Client({ connectionString: primary.url })
    await db.connect()
    try {
      const stored = await pollUntil(async () => (await db.query<{ device: string; celsius: number }>('SELECT device, celsius FROM readings')).rows[0], { timeoutMs: 20_000, everyMs: 100 })
      assert.deepEqual(stored, { device: 'd1', celsius: 21.5 })
      // ROUTEMQ_DATABASE_MIGRATE=true created the package's own table, as the Install section says.
      const heartbeat = await db.query<{ table: string | null }>("SELECT to_regclass('routemq_replication_heartbeat')::text AS table")
      assert.equal(heartbeat.rows[0]!.table, 'routemq_replication_heartbeat')
    } finally {
      await db.end()
    }

    const device = await mqtt.connectAsync(broker.url, { clientId: 'quickstart-device' })
    try {
      await device.subscribeAsync('devices/d1/config', { qos: 1 })
      const answer = new Promise<[string, Buffer]>((resolve) => device.once('message', (topic, payload) => resolve([topic, payload])))
      await device.publishAsync('devices/d1/config/get', '{}', { qos: 1 })
      const [topic, payload] = await withTimeout(answer, 20_000, `no answer on devices/d1/config; the app said:\n${appOutput}`)
      assert.equal(topic, 'devices/d1/config')
      assert.deepEqual(JSON.parse(payload.toString()), { interval_s: 60 })
    } finally {
      await device.endAsync()
    }

    process.kill(-app.pid!, 'SIGTERM')
    const [code, signal] = await withTimeout(exited, 30_000, `the app did not stop on SIGTERM:\n${appOutput}`)
    assert.ok(code === 0 || signal === 'SIGTERM', `the app ended with ${code ?? signal} on SIGTERM:\n${appOutput}`)
  })
})

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
