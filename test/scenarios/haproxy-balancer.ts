import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { planInfra, renderHaproxy, type BrokerPoolOptions, type InfraOptions } from 'routemq-load-balancing'
import { freePorts } from 'routemq-load-balancing/testing'
import { ensureDebianPackages, HAPROXY } from '../support/system-packages.js'
import { waitForListener } from '../support/wait-for-listener.js'

/**
 * HAProxy in front of the brokers, from the config the package renders for
 * them (with its default checks), as the devices of a deployment reach the
 * brokers. Devices connect to `url`.
 *
 * @example
 * const balancer = await HaproxyBalancer.start(dir, { brokers: brokerUrls }, ['127.0.0.1:9464'])
 * connect(balancer.url)
 * await balancer.stop()
 */
export class HaproxyBalancer {
  readonly url: string
  readonly config: string
  readonly #child: ChildProcess
  readonly #exited: Promise<unknown>
  readonly #log: string[] = []

  private constructor(url: string, config: string, child: ChildProcess) {
    this.url = url
    this.config = config
    this.#child = child
    this.#exited = once(child, 'exit')
    child.stdout?.on('data', (chunk: Buffer) => this.#keep(chunk))
    child.stderr?.on('data', (chunk: Buffer) => this.#keep(chunk))
  }

  static async start(directory: string, mqttOptions: BrokerPoolOptions, appInstances: readonly string[], infra: InfraOptions = {}): Promise<HaproxyBalancer> {
    ensureDebianPackages({ [HAPROXY]: 'haproxy' })
    const [mqtt, websocket, http, stats] = await freePorts(4)
    const plan = planInfra({
      mqtt: mqttOptions,
      infra: { ...infra, appInstances: [...appInstances], listen: { mqtt, websocket, http, stats } },
    })
    const config = renderHaproxy(plan).replace(/^(\s*bind ):/gm, '$1127.0.0.1:')
    const file = join(directory, 'haproxy.cfg')
    await writeFile(file, config)
    const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
    const balancer = new HaproxyBalancer(`mqtt://127.0.0.1:${mqtt}`, config, child)
    try {
      await waitForListener(mqtt!, child)
    } catch (error) {
      await balancer.stop()
      throw new Error(`${(error as Error).message}: ${balancer.log}`, { cause: error })
    }
    return balancer
  }

  /** What HAProxy logged (server state changes, errors). */
  get log(): string {
    return this.#log.join('')
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL')
    await this.#exited
  }

  #keep(chunk: Buffer): void {
    this.#log.push(chunk.toString())
    if (this.#log.length > 2000) this.#log.splice(0, 1000)
  }
}
