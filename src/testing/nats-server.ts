import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { awaitMqttSession } from './await-mqtt-session.js'
import type { BrokerHandle } from './broker-handle.js'
import type { ExitGuard } from './exit-guard.js'
import { renderNatsConfig, type NatsNodeConfig } from './nats-config.js'
import { SupervisedProcess } from './supervised-process.js'
import { SupervisedServer } from './supervised-server.js'
import { TopologyError } from './topology-error.js'

const HOST = '127.0.0.1'
const GRACEFUL_STOP_MS = 10_000
// Before JetStream has a leader, nats-server holds an MQTT connection for
// about 4 s and closes it without a CONNACK; a longer wait per attempt lets
// the attempt that coincides with the election succeed.
const CONNECT_ATTEMPT_MS = 6_000
// A node of a cluster logs one of these once it knows JetStream's metadata
// leader; an MQTT CONNECT before that is held for 4 s and refused.
const SERVER_READY = /Server is ready/

/**
 * Everything needed to run one node of a NATS cluster with MQTT.
 *
 * @example
 * const options: NatsServerOptions = {
 *   name: 'nats-1', directory: '/tmp/rmq-x/nats-1', binary: '/usr/sbin/nats-server', config, startTimeoutMs: 30_000, guard,
 * }
 */
export interface NatsServerOptions {
  readonly name: string
  readonly directory: string
  readonly binary: string
  readonly config: NatsNodeConfig
  readonly startTimeoutMs: number
  readonly guard: ExitGuard
}

/**
 * One nats-server node with JetStream and an MQTT listener, as a broker of a
 * local topology: `port` and `url` are its MQTT endpoint. Its directory holds
 * `nats-server.conf`, `nats-server.log` (its stderr) and `jetstream/`, which
 * every restart reuses. `kill()` SIGKILLs the node, `stop()` SIGTERMs it. A
 * start is over once the node accepts an MQTT session (a CONNACK with return
 * code 0), which it does only once JetStream has a leader, so a node of a
 * cluster starts only while a majority of the nodes run.
 *
 * @example
 * const node = await NatsServer.create(options)
 * await node.startInTurn(Promise.resolve())
 * await node.kill()
 * await node.restart()
 */
export class NatsServer extends SupervisedServer implements BrokerHandle {
  readonly wsUrl = undefined
  readonly #options: NatsServerOptions
  #turn: Promise<unknown> | undefined

  /**
   * Writes the node's directory and configuration, without starting it.
   *
   * @example
   * const nodes = await Promise.all(plans.map((plan) => NatsServer.create(plan)))
   */
  static async create(options: NatsServerOptions): Promise<NatsServer> {
    const node = new NatsServer(options)
    await mkdir(options.config.storeDirectory, { recursive: true, mode: 0o755 })
    await writeFile(join(options.directory, 'nats-server.conf'), renderNatsConfig(options.config), { mode: 0o644 })
    return node
  }

  private constructor(options: NatsServerOptions) {
    const { name, directory, config } = options
    const logFile = join(directory, 'nats-server.log')
    super(
      { name, host: HOST, port: config.mqttPort, url: `mqtt://${HOST}:${config.mqttPort}`, directory, logFile },
      new SupervisedProcess({
        name,
        command: options.binary,
        args: ['-c', join(directory, 'nats-server.conf')],
        cwd: directory,
        logFile,
        // As the current user: unlike Mosquitto and PostgreSQL, nats-server
        // neither drops root itself nor refuses it.
        account: undefined,
        guard: options.guard,
        guardSignal: 'SIGKILL',
        // A node that rejoins a running cluster need not log a new metadata leader: the MQTT session below decides.
        readyLine: SERVER_READY,
        startTimeoutMs: options.startTimeoutMs,
      }),
    )
    this.#options = Object.freeze({ ...options, config: Object.freeze({ ...config }) })
  }

  /**
   * The first start of a node of a new cluster: starts the process at once,
   * but asks it for an MQTT session only once `turn` (the previous node's
   * start) has succeeded; rejects as `turn` does. Nodes started side by side
   * this way form the cluster together, and are then checked one after
   * another, the first node first.
   *
   * @example
   * let turn: Promise<unknown> = Promise.resolve()
   * const starts = nodes.map((node) => (turn = node.startInTurn(turn)))
   * await Promise.all(starts)
   */
  startInTurn(turn: Promise<unknown>): Promise<void> {
    this.#turn = turn
    return this.serialize(() => this.launch())
  }

  protected shutDown(): Promise<void> {
    return this.process.stop('SIGTERM', GRACEFUL_STOP_MS)
  }

  protected async startServer(): Promise<void> {
    const turn = this.#turn
    this.#turn = undefined
    await this.process.start()
    await turn
    // Neither log lines nor /healthz mean that MQTT works: only a CONNACK
    // shows that JetStream, which holds the MQTT sessions, is available.
    const { startTimeoutMs } = this.#options
    const outcome = await awaitMqttSession(HOST, this.port, {
      timeoutMs: startTimeoutMs,
      attemptTimeoutMs: CONNECT_ATTEMPT_MS,
      alive: () => this.process.running,
    })
    if (outcome.accepted) {
      return
    }
    const exited = !this.process.running
    await this.process.kill()
    throw new TopologyError(
      exited
        ? `${this.name} exited before it accepted an MQTT session (last attempt: ${outcome.lastAttempt}). Fix the cause shown in ${this.logFile}.`
        : `${this.name} runs but did not accept an MQTT session on ${HOST}:${this.port} within ${startTimeoutMs} ms ` +
            `(last attempt: ${outcome.lastAttempt}). nats-server serves MQTT only once JetStream has a leader, which in a cluster ` +
            `needs a majority of the nodes running. Check ${this.logFile}, and raise startTimeoutMs on a slow machine.`,
    )
  }
}
