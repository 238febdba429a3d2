import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { connect, createServer } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync, type MqttClient } from 'mqtt'
import { renderHaproxy, renderKubernetesObjects, renderNginx, type InfraOptions } from '../../plugins/infra/index.js'
import { planInfra, runCli } from '../../src/composition/index.js'
import { Application, BrokerPool, Router, silentLogger } from '../../src/index.js'
import { freePorts, startTopology, type Topology } from '../../src/testing/index.js'
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js'
import { ensureDebianPackages, HAPROXY, NGINX, NGINX_STREAM_MODULE } from '../support/system-packages.js'
import { waitForListener } from '../support/wait-for-listener.js'
import { parseYamlDocuments } from '../support/yaml-subset.js'

/** Which broker each client id reached, from subscribers connected to each broker directly. */
async function whereClientsLand(topology: Topology, clients: readonly MqttClient[], ids: readonly string[], live = topology.brokers.map((_, i) => i)): Promise<Map<string, number>> {
  const landed = new Map<string, number>()
  const observers = await Promise.all(live.map((i) => connectAsync(topology.brokers[i]!.url, { clientId: `observer-${i}-${process.pid}` }).then(async (o) => {
    await o.subscribeAsync('who/#', { qos: 1 })
    o.on('message', (topic) => landed.set(topic.slice(4), i))
    return o
  })))
  try {
    await Promise.all(clients.map((c, i) => c.publishAsync(`who/${ids[i]}`, 'here', { qos: 1 })))
    // The observers got each message before the broker acknowledged the publish (same broker, QoS 1 to QoS 1);
    // a round trip on every observer makes sure their sockets delivered it.
    await Promise.all(observers.map((o) => o.publishAsync('sync', '', { qos: 1 })))
  } finally {
    await Promise.all(observers.map((o) => o.endAsync(true)))
  }
  return landed
}

function counts(landed: Map<string, number>, brokers: number): number[] {
  const result = new Array<number>(brokers).fill(0)
  for (const index of landed.values()) result[index]!++
  return result
}

/** Whether `host:port` accepts a TCP connection. */
async function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Status and body of a GET, with Basic credentials when given. */
async function get(url: string, credentials?: string): Promise<[number, string]> {
  const response = await fetch(url, { headers: credentials === undefined ? {} : { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } })
  return [response.status, await response.text()]
}

/** Resolves once `port` on 127.0.0.1 takes an MQTT connection through the balancer. */
async function connectThrough(port: number, clientId: string): Promise<MqttClient> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, connectTimeout: 5000 })
  client.on('error', () => undefined)
  return client
}

describe('balancer configs rendered from the module options, on real HAProxy and NGINX', function () {
  this.timeout(120_000)
  let dir: string
  before(async function () {
    this.timeout(320_000)
    ensureDebianPackages({ [HAPROXY]: 'haproxy', [NGINX]: 'nginx', [NGINX_STREAM_MODULE]: 'libnginx-mod-stream' })
    dir = await mkdtemp(join(tmpdir(), 'balancers-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  const variants: [string, InfraOptions, string[]][] = [
    ['the demo defaults', {}, ['mqtt://127.0.0.1:1884', 'mqtt://127.0.0.1:1885', 'mqtt://127.0.0.1:1886']],
    ['WebSocket brokers, the PROXY protocol, round robin', { proxyProtocol: true, balance: 'roundrobin' }, ['mqtt://localhost:1883', 'ws://localhost:9001/mqtt', 'mqtt://[::1]:1884']],
    ['several app instances, other ports', { appInstances: ['localhost:9464', '127.0.0.2:9464', '[::1]:9464'], listen: { mqtt: 11883, http: 18080, stats: 18404, websocket: 18083 } }, ['mqtt://localhost:1883']],
  ]
  for (const [what, infra, brokers] of variants) {
    it(`renders configs HAProxy and NGINX accept: ${what}`, async () => {
      const plan = planInfra({ mqtt: { brokers }, infra: { ...infra, nginxPid: join(dir, 'check.pid'), nginxErrorLog: join(dir, 'check.log') } })
      await writeFile(join(dir, 'check.cfg'), renderHaproxy(plan))
      await writeFile(join(dir, 'check.conf'), renderNginx(plan))
      const haproxy = spawnSync(HAPROXY, ['-c', '-f', join(dir, 'check.cfg')], { encoding: 'utf8' })
      assert.equal(haproxy.status, 0, haproxy.stdout + haproxy.stderr)
      const nginx = spawnSync(NGINX, ['-t', '-c', join(dir, 'check.conf')], { encoding: 'utf8' })
      assert.equal(nginx.status, 0, nginx.stdout + nginx.stderr)
    })
  }

  it('renders configs HAProxy and NGINX accept with odd but valid names: mixed case, IPv6 spelled out, punctuation in ids and paths', async () => {
    const plan = planInfra({
      mqtt: { brokers: [{ url: 'mqtt://LocalHost:1883', id: 'Edge:A.1_b-2' }, 'mqtt://[0:0:0:0:0:0:0:1]:1884', 'mqtt://127.0.0.2:1885', 'ws://localHOST:9001/mqtt'] },
      infra: { appInstances: ['LOCALHOST:9464', '[::1]:9465'], internal: { host: '::1' }, nginxPid: join(dir, 'odd+pid@1=a,b.pid'), nginxErrorLog: join(dir, 'odd~log%1:2.log') },
    })
    await writeFile(join(dir, 'odd.cfg'), renderHaproxy(plan))
    await writeFile(join(dir, 'odd.conf'), renderNginx(plan))
    const haproxy = spawnSync(HAPROXY, ['-c', '-f', join(dir, 'odd.cfg')], { encoding: 'utf8' })
    assert.equal(haproxy.status, 0, haproxy.stdout + haproxy.stderr)
    const nginx = spawnSync(NGINX, ['-t', '-c', join(dir, 'odd.conf')], { encoding: 'utf8' })
    assert.equal(nginx.status, 0, nginx.stdout + nginx.stderr)
  })

  it('refuses an injected broker or health host before any config is written', async () => {
    let err = ''
    const run = (args: string[]) => runCli(args, () => undefined, (t) => (err += t))
    const envFile = join(dir, 'injected.env')
    // HAProxy expands "${HOME}" in a server address; `;` and braces end NGINX directives.
    const attempts: [string, string][] = [['haproxy', 'mqtt://"${HOME}":1883'], ['nginx', 'mqtt://b1;}server{listen{:1883'], ['kubernetes', "mqtt://b1':1883"]]
    for (const [target, broker] of attempts) {
      await writeFile(envFile, `ROUTEMQ_MQTT_BROKERS=mqtt://127.0.0.1:1883,${broker}\n`)
      const out = join(dir, `injected-${target}`)
      err = ''
      assert.equal(await run(['render', target, '--env-file', envFile, '--out', out]), 1, `${broker} is refused`)
      assert.match(err, /^Option "ROUTEMQ_MQTT_BROKERS" is invalid: has the host .* \(mqtt\.brokers\[1\]\.url\)$/m)
      assert.equal(existsSync(out), false, 'nothing is written')
    }
    const configFile = join(dir, 'injected.json')
    const host = '127.0.0.1:1; } server { listen 127.0.0.1:9999; location / { return 200 injected; } } upstream x { server 127.0.0.1'
    await writeFile(configFile, JSON.stringify({ mqtt: { brokers: ['mqtt://127.0.0.1:1883'] }, health: { http: { host, port: 9464 } } }))
    err = ''
    assert.equal(await run(['render', 'nginx', '--config', configFile, '--out', join(dir, 'injected-config')]), 1)
    assert.match(err, /Option "health\.http\.host" is invalid/)
    assert.equal(existsSync(join(dir, 'injected-config')), false)
  })

  it("HAProxy serves its stats page and the app's endpoints on loopback only, and elsewhere only with the credentials in its environment", async () => {
    // A stand-in app instance that says which Authorization header reached it.
    const app = createHttpServer((request, response) => response.end(JSON.stringify(request.headers.authorization ?? null)))
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    const appPort = (app.address() as { port: number }).port
    const [mqttPort, httpPort, statsPort] = await freePorts(3)
    const external = Object.values(networkInterfaces()).flat().find((a) => a && !a.internal && a.family === 'IPv4')?.address
    const infra: InfraOptions = { listen: { mqtt: mqttPort!, http: httpPort!, stats: statsPort! }, appInstances: [`127.0.0.1:${appPort}`], check: { requireSubscriber: false } }
    const start = async (name: string, options: InfraOptions, env: Record<string, string> = {}) => {
      const cfg = join(dir, name)
      const text = renderHaproxy(planInfra({ mqtt: { brokers: ['mqtt://127.0.0.1:1883'] }, infra: options }))
      await writeFile(cfg, text)
      const haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: 'ignore', env: { ...process.env, ...env } })
      const exited = once(haproxy, 'exit')
      await waitForListener(statsPort!, haproxy)
      // The next HAProxy binds the same ports: this one must be gone first.
      const stop = async () => {
        haproxy.kill('SIGKILL')
        await exited
      }
      return { stop, text }
    }
    const stats = `http://127.0.0.1:${statsPort}/stats;csv`
    const ready = `http://127.0.0.1:${httpPort}/ready`
    try {
      const internal = await start('haproxy-internal.cfg', infra)
      try {
        assert.equal((await get(stats))[0], 200, 'the stats page answers on loopback')
        assert.deepEqual(await get(ready), [200, 'null'], "and so do the app's endpoints")
        if (external) {
          assert.equal(await accepts(external, statsPort!), false, `no stats page on ${external}`)
          assert.equal(await accepts(external, httpPort!), false, `no /metrics on ${external}`)
        }
      } finally {
        await internal.stop()
      }

      const open = { ...infra, internal: { host: '0.0.0.0', userEnv: 'OPS_USER', passwordEnv: 'OPS_PASSWORD' } }
      const password = 'pa"ss:w,rd ${1}'
      const guarded = await start('haproxy-open.cfg', open, { OPS_USER: 'ops', OPS_PASSWORD: password })
      try {
        const missing = spawnSync(HAPROXY, ['-c', '-f', join(dir, 'haproxy-open.cfg')], { encoding: 'utf8', env: { PATH: process.env.PATH! } })
        assert.notEqual(missing.status, 0, 'HAProxy refuses to start without the credentials')
        assert.match(missing.stdout + missing.stderr, /set OPS_USER in HAProxy's environment/)
        assert.ok(!guarded.text.includes(password), 'the password is not in the config')
        assert.equal((await get(stats))[0], 401)
        assert.equal((await get(stats, 'ops:wrong'))[0], 401)
        assert.equal((await get(stats, `ops:${password}`))[0], 200)
        assert.equal((await get(ready))[0], 401)
        assert.deepEqual(await get(ready, `ops:${password}`), [200, 'null'], 'the app does not see the credentials')
        if (external) assert.equal((await get(`http://${external}:${statsPort}/stats;csv`))[0], 401, `asked for them on ${external}`)
      } finally {
        await guarded.stop()
      }

      const empty = await start('haproxy-empty.cfg', open, { OPS_USER: 'ops', OPS_PASSWORD: '' })
      try {
        assert.equal((await get(stats, 'ops:'))[0], 401, 'an empty password never passes')
      } finally {
        await empty.stop()
      }
    } finally {
      app.close()
    }
  })

  it('HAProxy spreads MQTT clients over 3 brokers, finds a SIGKILLed one down within inter × fall by MQTT checks, and sends new clients to the others', async () => {
    const topology = await startTopology({ brokers: 3 })
    const [mqttPort, httpPort, statsPort, appPort] = await freePorts(4)
    // The app is not part of this test: brokers are checked for CONNACK only.
    const check = { intervalMs: 500, fall: 2, rise: 1, requireSubscriber: false }
    const plan = planInfra({ mqtt: { brokers: topology.brokers.map((b) => b.url) }, infra: { check, listen: { mqtt: mqttPort!, http: httpPort!, stats: statsPort! }, appInstances: [`127.0.0.1:${appPort}`] } })
    const cfg = join(dir, 'haproxy.cfg')
    await writeFile(cfg, renderHaproxy(plan))
    const check0 = spawnSync(HAPROXY, ['-c', '-f', cfg], { encoding: 'utf8' })
    assert.equal(check0.status, 0, check0.stdout + check0.stderr)
    const haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: 'ignore' })
    const clients: MqttClient[] = []
    try {
      await waitForListener(mqttPort!, haproxy)
      const ids = Array.from({ length: 9 }, (_, i) => `device-${i}`)
      for (const id of ids) clients.push(await connectThrough(mqttPort!, id))
      const before = counts(await whereClientsLand(topology, clients, ids), 3)
      assert.deepEqual(before, [3, 3, 3], `leastconn over held connections: ${before}`)

      // SIGKILL the first broker; the stats page says when HAProxy's MQTT check took it out.
      const killed = performance.now()
      await topology.brokers[0]!.kill()
      const serverId = plan.brokers[0]!.id
      let downAfterMs: number | undefined
      while (downAfterMs === undefined) {
        const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text()
        const row = csv.split('\n').find((line) => line.startsWith(`routemq_brokers,${serverId},`))
        if (row?.split(',')[17]?.startsWith('DOWN')) downAfterMs = performance.now() - killed
        else if (performance.now() - killed > 10_000) assert.fail(`still ${row?.split(',')[17]} 10 s after the kill`)
        else await new Promise((resolve) => setTimeout(resolve, 25))
      }
      // The check runs every inter; fall failures in a row take the server out: at most inter × fall after the kill.
      assert.ok(downAfterMs <= check.intervalMs * check.fall + 150, `down after ${downAfterMs.toFixed(0)} ms (inter ${check.intervalMs} × fall ${check.fall})`)

      const newIds = Array.from({ length: 6 }, (_, i) => `late-${i}`)
      const late: MqttClient[] = []
      for (const id of newIds) late.push(await connectThrough(mqttPort!, id))
      clients.push(...late)
      const after = counts(await whereClientsLand(topology, late, newIds, [1, 2]), 3)
      assert.equal(after[0], 0, `no new client on the dead broker: ${after}`)
      assert.equal(after[1]! + after[2]!, 6)
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)))
      haproxy.kill('SIGKILL')
      await topology.stop()
    }
  })

  it('HAProxy checks speak MQTT: a server that accepts TCP but answers no CONNACK is down, a broker is up', async () => {
    const topology = await startTopology({ brokers: 1 })
    // Accepts connections and reads them, never answers: up for a TCP check, down for an MQTT one.
    const silent = createServer((socket) => socket.on('error', () => undefined).resume())
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const silentPort = (silent.address() as { port: number }).port
    const [mqttPort, httpPort, statsPort, appPort] = await freePorts(4)
    const plan = planInfra({
      mqtt: { brokers: [topology.brokers[0]!.url, `mqtt://127.0.0.1:${silentPort}`] },
      infra: { check: { intervalMs: 300, fall: 1, rise: 1, requireSubscriber: false }, listen: { mqtt: mqttPort!, http: httpPort!, stats: statsPort! }, appInstances: [`127.0.0.1:${appPort}`] },
    })
    const cfg = join(dir, 'haproxy-silent.cfg')
    await writeFile(cfg, renderHaproxy(plan))
    const haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: 'ignore' })
    try {
      await waitForListener(statsPort!, haproxy)
      const status = async (id: string): Promise<string | undefined> => {
        const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text()
        return csv.split('\n').find((line) => line.startsWith(`routemq_brokers,${id},`))?.split(',')[17]
      }
      const deadline = Date.now() + 10_000
      while ((await status(plan.brokers[1]!.id)) !== 'DOWN' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      assert.equal(await status(plan.brokers[1]!.id), 'DOWN', 'no CONNACK, no service')
      assert.equal(await status(plan.brokers[0]!.id), 'UP', 'the broker answered CONNACK')
    } finally {
      haproxy.kill('SIGKILL')
      silent.close()
      await topology.stop()
    }
  })

  it('HAProxy lets devices onto a broker only while the app is subscribed there (MQTT 5 check), and again once it is back', async () => {
    const topology = await startTopology({ brokers: 2 })
    // The app reaches broker 2 through a proxy that can cut it off.
    const path = await TcpFaultProxy.start({ target: { host: topology.brokers[1]!.host, port: topology.brokers[1]!.port } })
    const [mqttPort, httpPort, statsPort, appPort] = await freePorts(4)
    const plan = planInfra({
      mqtt: { brokers: topology.brokers.map((b) => b.url) },
      infra: { check: { intervalMs: 300, fall: 1, rise: 2 }, listen: { mqtt: mqttPort!, http: httpPort!, stats: statsPort! }, appInstances: [`127.0.0.1:${appPort}`] },
    })
    assert.equal(plan.check.readyTopic, 'routemq/control/ready')
    const cfg = join(dir, 'haproxy-ready.cfg')
    await writeFile(cfg, renderHaproxy(plan))
    const haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: 'ignore' })
    const pool = new BrokerPool({ brokers: [topology.brokers[0]!.url, path.url()], logger: silentLogger })
    try {
      await waitForListener(statsPort!, haproxy)
      const status = async (index: number): Promise<string | undefined> => {
        const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text()
        return csv.split('\n').find((line) => line.startsWith(`routemq_brokers,${plan.brokers[index]!.id},`))?.split(',')[17]
      }
      const until = async (index: number, wanted: string): Promise<void> => {
        const deadline = Date.now() + 10_000
        while ((await status(index)) !== wanted) {
          if (Date.now() > deadline) assert.fail(`broker ${index + 1} is ${await status(index)}, not ${wanted}, after 10 s`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
      await until(0, 'DOWN')
      await until(1, 'DOWN')
      const app = Application.create({ router: new Router().on('jobs/{id}', () => undefined, { qos: 1 }), transport: pool, logger: silentLogger })
      await app.start()
      await until(0, 'UP')
      await until(1, 'UP')
      // Broker 2 restarts without persistence while the app cannot reach it: it knows no subscriber, devices stay off it.
      path.setMode('refuse')
      await topology.brokers[1]!.restart()
      await until(1, 'DOWN')
      assert.equal(await status(0), 'UP')
      path.setMode('pass')
      await until(1, 'UP')
      assert.equal(pool.stats.brokers[1]!.connected, true)
      await app.stop()
    } finally {
      await pool.close()
      haproxy.kill('SIGKILL')
      await path.close()
      await topology.stop()
    }
  })

  it('NGINX stream spreads MQTT clients over 3 brokers', async () => {
    const topology = await startTopology({ brokers: 3 })
    const [mqttPort, httpPort, appPort] = await freePorts(3)
    const plan = planInfra({
      mqtt: { brokers: topology.brokers.map((b) => b.url) },
      infra: { listen: { mqtt: mqttPort!, http: httpPort! }, appInstances: [`127.0.0.1:${appPort}`], nginxPid: join(dir, 'nginx.pid'), nginxErrorLog: join(dir, 'nginx.log') },
    })
    const conf = join(dir, 'nginx.conf')
    await writeFile(conf, renderNginx(plan))
    const nginx = spawn(NGINX, ['-c', conf, '-g', 'daemon off;'], { stdio: 'ignore' })
    const clients: MqttClient[] = []
    try {
      await waitForListener(mqttPort!, nginx)
      const ids = Array.from({ length: 9 }, (_, i) => `nginx-device-${i}`)
      for (const id of ids) clients.push(await connectThrough(mqttPort!, id))
      const spread = counts(await whereClientsLand(topology, clients, ids), 3)
      // least_conn per worker process: every broker gets clients, none gets most of them.
      assert.ok(spread.every((n) => n >= 2), `spread ${spread}`)
    } finally {
      await Promise.all(clients.map((c) => c.endAsync(true)))
      nginx.kill('SIGQUIT')
      await new Promise((resolve) => (nginx.exitCode !== null ? resolve(undefined) : nginx.once('exit', resolve)))
      await topology.stop()
    }
  })

  it("renders Kubernetes manifests that parse, with probes on the health server's paths and port", async () => {
    const plan = planInfra({ mqtt: { brokers: ['mqtt://broker:1883'] }, health: { http: { host: '0.0.0.0', port: 9555 } }, infra: { replicas: 3 } })
    const documents = parseYamlDocuments((await import('../../plugins/infra/render-kubernetes.js')).renderKubernetes(plan)) as Record<string, any>[]
    assert.deepEqual(documents, JSON.parse(JSON.stringify(renderKubernetesObjects(plan))), 'the YAML says exactly what the objects say')
    assert.deepEqual(documents.map((d) => d.kind), ['ConfigMap', 'StatefulSet', 'Service', 'Service', 'Service'], 'no Ingress: the app serves no public HTTP')
    const deployment = documents[1]!
    const container = deployment.spec.template.spec.containers[0]
    // Persistent sessions (the default): each pod's name is its client id, the same after a restart or reschedule.
    assert.deepEqual(container.env, [{ name: 'ROUTEMQ_MQTT_CLIENT_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }])
    const governing = documents.find((d) => d.metadata.name === deployment.spec.serviceName)!
    assert.equal(governing.spec.clusterIP, 'None', 'a StatefulSet is governed by a headless Service')
    assert.deepEqual(container.ports, [{ name: 'health', containerPort: 9555, protocol: 'TCP' }])
    assert.deepEqual([container.livenessProbe.httpGet, container.readinessProbe.httpGet], [{ path: '/health', port: 'health' }, { path: '/ready', port: 'health' }])
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels, 'the selector matches the pods')
    assert.equal(deployment.spec.replicas, 3)
    assert.equal(documents[0]!.data.ROUTEMQ_HEALTH_PORT, '9555', 'the app listens where the probes look')
    const health = documents.find((d) => d.metadata.name === 'routemq-health')!
    assert.deepEqual([health.spec.type, health.spec.ports[0].targetPort], ['ClusterIP', 'health'], 'the health port is reached inside the cluster only')
    for (const document of documents) assert.match(document.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'DNS-1123 names')

    const clean = renderKubernetesObjects(planInfra({ mqtt: { brokers: ['mqtt://broker:1883'], clean: true } })) as Record<string, any>[]
    assert.deepEqual(clean.map((d) => d.kind), ['ConfigMap', 'Deployment', 'Service', 'Service'], 'clean sessions need no stable identity')
    assert.equal(clean[1]!.spec.template.spec.containers[0].env, undefined)
  })

  it('the command refuses a --config with a typo or an impossible value, naming the full path, and writes nothing', async () => {
    let out = ''
    let err = ''
    const run = (args: string[]) => runCli(args, (t) => (out += t), (t) => (err += t))
    const config = join(dir, 'lb.json')
    const cases: [unknown, RegExp][] = [
      [{ infra: { imag: 'x', replica: 5, lisen: {}, chek: {} } }, /^Option "infra\.imag" is invalid: is not an option; did you mean infra\.image\?$/m],
      [{ infra: { check: { intervalMS: 5 } } }, /^Option "infra\.check\.intervalMS" is invalid: .*did you mean infra\.check\.intervalMs\?$/m],
      [{ infra: 'x' }, /^Option "infra" is invalid: must be an object/m],
      [{ health: { http: { prot: 9000 } } }, /^Option "health\.http\.prot" is invalid: .*did you mean health\.http\.port\?$/m],
      [{ helth: {} }, /^Option "helth" is invalid: .*did you mean health\?$/m],
      [{ mqtt: { keepaliveSecond: 30 } }, /^Option "mqtt\.keepaliveSecond" is invalid: .*did you mean mqtt\.keepaliveSeconds\?$/m],
      [{ infra: { deviceKeepaliveSeconds: 3_000_000 } }, /^Option "infra\.deviceKeepaliveSeconds" is invalid: must be a whole number from 1 to 65535$/m],
      [{ infra: { check: { intervalMs: 1e12 } } }, /^Option "infra\.check\.intervalMs" is invalid: must be a whole number from 1 to 2147483647$/m],
      [{ infra: { internal: { userEnv: 'U', passwordEnv: 'U' } } }, /^Option "infra\.internal\.passwordEnv" is invalid: names U as infra\.internal\.userEnv does/m],
    ]
    for (const [options, expected] of cases) {
      const { mqtt, ...rest } = options as { mqtt?: object }
      await writeFile(config, JSON.stringify({ mqtt: { brokers: ['mqtt://127.0.0.1:1883'], ...mqtt }, ...rest }))
      out = ''
      err = ''
      assert.equal(await run(['render', 'haproxy', '--config', config]), 1, JSON.stringify(options))
      assert.match(err, expected)
      assert.equal(out, '', 'and nothing is rendered')
    }
  })

  it('the command refuses an --env-file line that sets nothing, or a variable set twice, naming the line', async () => {
    let err = ''
    const run = (args: string[]) => runCli(args, () => undefined, (t) => (err += t))
    const envFile = join(dir, 'lines.env')
    await writeFile(envFile, '# brokers\nROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\n\nROUTEMQ_HEALTH_PORT 9500\n')
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 1)
    assert.match(err, /^Option "--env-file" is invalid: \S+lines\.env line 4 sets no variable: write NAME=value/m)
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_HEALTH_PORT=9500\nexport ROUTEMQ_HEALTH_PORT=9600\n')
    err = ''
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 1)
    assert.match(err, /^Option "--env-file" is invalid: \S+lines\.env line 3 sets ROUTEMQ_HEALTH_PORT again \(first on line 2\)/m)
    // Comments, blank lines, CRLF and a quoted value over several lines are still read.
    await writeFile(envFile, '# brokers\r\nROUTEMQ_MQTT_BROKERS="mqtt://b1:1883"\r\n\r\nROUTEMQ_INFRA_NAME=edge\r\nNOTE="two\r\nlines = one value"\r\n')
    err = ''
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 0, err)
  })

  it('the command renders to standard output or a directory, and names a bad variable', async () => {
    let out = ''
    let err = ''
    const run = (args: string[]) => runCli(args, (t) => (out += t), (t) => (err += t))
    assert.equal(await run(['--help']), 0)
    assert.match(out, /render <haproxy\|nginx\|kubernetes\|grafana\|alerts>/)
    assert.equal(await run(['render', 'traefik']), 2)
    await writeFile(join(dir, 'a-file'), '')
    err = ''
    assert.equal(await run(['render', 'nginx', '--out', join(dir, 'a-file', 'sub')]), 1, 'an --out that cannot be written is a clear error')
    assert.match(err, /Cannot write/)
    out = ''
    assert.equal(await run(['render', 'haproxy']), 0)
    // MQTT 5 (the default): CONNACK, then a QoS 1 publish to the app's ready topic acknowledged as having a subscriber.
    assert.match(out, /tcp-check expect rbinary \^20\.\.0000/)
    assert.match(out, /tcp-check expect rbinary \^40020001\|\^40\.\.000100/)
    const envFile = join(dir, 'app.env')
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883,mqtt://b2:1883\nROUTEMQ_HEALTH_PORT=9500\nROUTEMQ_INFRA_APP_INSTANCES=app-1:9500,app-2:9500\n')
    assert.equal(await run(['render', 'nginx', '--env-file', envFile, '--out', join(dir, 'out')]), 0)
    const written = await readFile(join(dir, 'out', 'nginx.conf'), 'utf8')
    assert.match(written, /server b1:1883/)
    assert.match(written, /server app-2:9500/)
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_INFRA_CHECK_FALL=zero\n')
    err = ''
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 1)
    assert.match(err, /ROUTEMQ_INFRA_CHECK_FALL/)
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_INFRA_APP_INSTANCES=app-1\n')
    err = ''
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 1)
    assert.match(err, /ROUTEMQ_INFRA_APP_INSTANCES/)
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_INFRA_INTERNAL_HOST=0.0.0.0\nROUTEMQ_INFRA_INTERNAL_USER_ENV=OPS_USER\nROUTEMQ_INFRA_INTERNAL_PASSWORD_ENV=OPS_PASSWORD\n')
    out = ''
    assert.equal(await run(['render', 'haproxy', '--env-file', envFile]), 0)
    assert.match(out, /^ {2}bind 0\.0\.0\.0:8404$/m)
    err = ''
    assert.equal(await run(['render', 'nginx', '--env-file', envFile]), 1, 'NGINX keeps the internal listeners on loopback')
    assert.match(err, /^Option "ROUTEMQ_INFRA_INTERNAL_HOST" is invalid: NGINX cannot read credentials/m)
    await writeFile(envFile, 'ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_INFRA_INGRESS_HOST=fleet.example.com\n')
    err = ''
    assert.equal(await run(['render', 'kubernetes', '--env-file', envFile]), 1)
    assert.match(err, /^Option "ROUTEMQ_INFRA_INGRESS_HOST" is invalid: is no longer rendered/m)
  })
})
