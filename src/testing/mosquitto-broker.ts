import { chown, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BrokerHandle } from './broker-handle.js'
import type { ExitGuard } from './exit-guard.js'
import type { OsAccount } from './os-account.js'
import { mqttBrokerResponds } from './probe-mqtt.js'
import { SupervisedProcess } from './supervised-process.js'
import { SupervisedServer } from './supervised-server.js'
import { TopologyError } from './topology-error.js'

const HOST = '127.0.0.1'
const GRACEFUL_STOP_MS = 10_000

/**
 * Everything needed to run one broker.
 *
 * @example
 * const options: MosquittoBrokerOptions = {
 *   name: 'broker-1', directory: '/tmp/rmq-x/broker-1', port: 41883, websocketPort: undefined,
 *   binary: '/usr/sbin/mosquitto', extraConfig: '', persistence: { autosaveIntervalSeconds: 30 },
 *   account: undefined, keepRootPrivileges: false, startTimeoutMs: 30_000, guard,
 * }
 */
export interface MosquittoBrokerOptions {
  readonly name: string
  readonly directory: string
  readonly port: number
  readonly websocketPort: number | undefined
  readonly binary: string
  /** mosquitto.conf lines appended after the generated ones. */
  readonly extraConfig: string
  /** Keep sessions, subscriptions and retained messages in `data/`; `undefined` keeps them in memory only. */
  readonly persistence: MosquittoPersistence | undefined
  /** Run the broker as this user. */
  readonly account: OsAccount | undefined
  /** Write `user root`, for a root session without a `mosquitto` user to drop to. */
  readonly keepRootPrivileges: boolean
  readonly startTimeoutMs: number
  readonly guard: ExitGuard
}

/**
 * How a persistent broker saves its state.
 *
 * @example
 * const persistence: MosquittoPersistence = { autosaveIntervalSeconds: 30 }
 */
export interface MosquittoPersistence {
  /** Seconds between saves of the in-memory database (`autosave_interval`). */
  readonly autosaveIntervalSeconds: number
}

/**
 * A Mosquitto broker process with a generated configuration: one loopback
 * listener (plus a websocket one if asked), anonymous access, logging to
 * stderr, which is copied into `mosquitto.log`. With persistence its database
 * lives in `data/` of its directory, which every restart reuses: Mosquitto
 * saves it on SIGTERM (stop, restart) and every autosave interval, so after
 * kill() only what the last autosave wrote comes back.
 *
 * @example
 * const broker = await MosquittoBroker.launch(options)
 * console.log(broker.url)
 */
export class MosquittoBroker extends SupervisedServer implements BrokerHandle {
  readonly wsUrl: string | undefined
  readonly #options: MosquittoBrokerOptions

  /**
   * Writes the broker's directory and configuration, starts it and resolves
   * once it accepts TCP connections.
   *
   * @example
   * const broker = await MosquittoBroker.launch(options)
   */
  static async launch(options: MosquittoBrokerOptions): Promise<MosquittoBroker> {
    const broker = new MosquittoBroker(options)
    await broker.#writeConfiguration()
    await broker.launch()
    return broker
  }

  private constructor(options: MosquittoBrokerOptions) {
    const logFile = join(options.directory, 'mosquitto.log')
    super(
      { name: options.name, host: HOST, port: options.port, url: `mqtt://${HOST}:${options.port}`, directory: options.directory, logFile },
      new SupervisedProcess({
        name: options.name,
        command: options.binary,
        args: ['-c', join(options.directory, 'mosquitto.conf')],
        cwd: options.directory,
        logFile,
        account: options.account,
        guard: options.guard,
        guardSignal: 'SIGKILL',
        readyLine: /mosquitto version \S+ running/,
        startTimeoutMs: options.startTimeoutMs,
      }),
    )
    this.#options = Object.freeze({ ...options, persistence: options.persistence && Object.freeze({ ...options.persistence }) })
    this.wsUrl = options.websocketPort === undefined ? undefined : `ws://${HOST}:${options.websocketPort}`
  }

  protected shutDown(): Promise<void> {
    return this.process.stop('SIGTERM', GRACEFUL_STOP_MS)
  }

  async #writeConfiguration(): Promise<void> {
    const { directory, port, websocketPort, keepRootPrivileges, extraConfig, persistence } = this.#options
    const dataDirectory = join(directory, 'data')
    const lines = [
      `listener ${port} ${HOST}`,
      ...(websocketPort === undefined ? [] : [`listener ${websocketPort} ${HOST}`, 'protocol websockets']),
      'allow_anonymous true',
      ...(persistence === undefined
        ? ['persistence false']
        : [
            'persistence true',
            // Mosquitto before 2.0 appends the file name to this string as it is.
            `persistence_location ${dataDirectory}/`,
            `autosave_interval ${persistence.autosaveIntervalSeconds}`,
          ]),
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      'log_timestamp_format %Y-%m-%dT%H:%M:%S',
      ...(keepRootPrivileges ? ['user root'] : []),
      extraConfig,
    ]
    await mkdir(directory, { mode: 0o755 })
    if (persistence !== undefined) {
      await mkdir(dataDirectory, { mode: 0o700 })
      // The broker writes mosquitto.db.new there and renames it, as its own user.
      if (this.#options.account !== undefined) {
        await chown(dataDirectory, this.#options.account.uid, this.#options.account.gid)
      }
    }
    await writeFile(join(directory, 'mosquitto.conf'), `${lines.join('\n')}\n`, { mode: 0o644 })
  }

  protected async startServer(): Promise<void> {
    await this.process.start()
    // mosquitto prints the ready line and installs its signal handlers
    // before it sets its `run` flag and enters its main loop, so a SIGTERM in
    // between is forgotten and a stop() right after start() would wait out
    // the grace period. An answered CONNECT proves the loop runs (and the
    // port is reachable, not merely bound).
    if (!(await mqttBrokerResponds(HOST, this.port, this.#options.startTimeoutMs))) {
      await this.process.kill()
      throw new TopologyError(
        `${this.name} reported that it runs but did not answer an MQTT CONNECT on ${HOST}:${this.port}. ` +
          `Check ${this.logFile} and whether brokerConfig replaced the listener.`,
      )
    }
  }
}
