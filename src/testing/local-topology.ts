import { rm } from 'node:fs/promises'
import type { ExitGuard } from './exit-guard.js'
import type { MosquittoBroker } from './mosquitto-broker.js'
import type { NatsServer } from './nats-server.js'
import type { PostgresServer } from './postgres-server.js'
import type { Topology } from './topology.js'
import { TopologyError } from './topology-error.js'

/**
 * The parts of a started topology, handed over by {@link startTopology}.
 *
 * @example
 * const parts: LocalTopologyParts = { directory, brokers, primary, replicas, guard, keepDirectory: false }
 */
export interface LocalTopologyParts {
  readonly directory: string
  readonly brokers: readonly (MosquittoBroker | NatsServer)[]
  readonly primary: PostgresServer | undefined
  readonly replicas: readonly PostgresServer[]
  readonly guard: ExitGuard
  readonly keepDirectory: boolean
}

/**
 * The {@link Topology} implementation: owns the processes' handles, the
 * directory and the exit guard, and tears them down once.
 *
 * @example
 * const topology = new LocalTopology(parts)
 * await topology.stop()
 */
export class LocalTopology implements Topology {
  readonly directory: string
  readonly brokers: readonly (MosquittoBroker | NatsServer)[]
  readonly replicas: readonly PostgresServer[]
  readonly #postgres: readonly PostgresServer[]
  readonly #guard: ExitGuard
  readonly #keepDirectory: boolean
  #stopping: Promise<void> | undefined

  constructor(parts: LocalTopologyParts) {
    this.directory = parts.directory
    this.brokers = Object.freeze([...parts.brokers])
    this.replicas = Object.freeze([...parts.replicas])
    this.#postgres = Object.freeze([...(parts.primary === undefined ? [] : [parts.primary]), ...parts.replicas])
    this.#guard = parts.guard
    this.#keepDirectory = parts.keepDirectory
  }

  /**
   * See {@link Topology.primary}: the primary-role server promoted last, or
   * the one started as primary.
   *
   * @example
   * await topology.replicas[0].promote()
   * assert.equal(topology.primary, topology.replicas[0])
   */
  get primary(): PostgresServer | undefined {
    let current: PostgresServer | undefined
    for (const server of this.#postgres) {
      if (server.role === 'primary' && (current === undefined || server.promotion > current.promotion)) {
        current = server
      }
    }
    return current
  }

  /**
   * See {@link Topology.stop}.
   *
   * @example
   * await topology.stop()
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#tearDown()
    return this.#stopping
  }

  async #tearDown(): Promise<void> {
    const servers = [...this.brokers, ...this.#postgres]
    // Before the first await: a restart waiting for its old process to exit
    // must find its server retired and not start a new one.
    for (const server of servers) {
      server.retire()
    }
    const results = await Promise.allSettled(servers.map((server) => server.stop()))
    try {
      if (!this.#keepDirectory) {
        await rm(this.directory, { recursive: true, force: true })
      }
    } finally {
      this.#guard.dispose()
    }
    const failed = results.findIndex((result) => result.status === 'rejected')
    const failure = results[failed]
    if (failure?.status === 'rejected') {
      throw new TopologyError(
        `${servers[failed]?.name} did not stop cleanly; see the cause. The rest of the topology in ${this.directory} was stopped.`,
        { cause: failure.reason },
      )
    }
  }
}
