import { rm } from 'node:fs/promises'
import type { BrokerHandle } from './broker-handle.js'
import type { ExitGuard } from './exit-guard.js'
import type { PostgresHandle } from './postgres-handle.js'
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
  readonly brokers: readonly BrokerHandle[]
  readonly primary: PostgresHandle | undefined
  readonly replicas: readonly PostgresHandle[]
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
  readonly brokers: readonly BrokerHandle[]
  readonly primary: PostgresHandle | undefined
  readonly replicas: readonly PostgresHandle[]
  readonly #guard: ExitGuard
  readonly #keepDirectory: boolean
  #stopping: Promise<void> | undefined

  constructor(parts: LocalTopologyParts) {
    this.directory = parts.directory
    this.brokers = Object.freeze([...parts.brokers])
    this.primary = parts.primary
    this.replicas = Object.freeze([...parts.replicas])
    this.#guard = parts.guard
    this.#keepDirectory = parts.keepDirectory
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
    const handles = [...this.brokers, ...this.replicas, ...(this.primary === undefined ? [] : [this.primary])]
    const results = await Promise.allSettled(handles.map((handle) => handle.stop()))
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
        `${handles[failed]?.name} did not stop cleanly; see the cause. The rest of the topology in ${this.directory} was stopped.`,
        { cause: failure.reason },
      )
    }
  }
}
