import type { MosquittoPersistence } from './mosquitto-broker.js'
import { TopologyError } from './topology-error.js'
import type { TopologyOptions } from './topology-options.js'

const DEFAULT_START_TIMEOUT_MS = 30_000
const DEFAULT_AUTOSAVE_INTERVAL_SECONDS = 30

/**
 * {@link TopologyOptions} checked, with defaults filled in.
 *
 * @example
 * const settings: TopologySettings = resolveTopologySettings({ brokers: 3, brokerKind: 'nats' })
 */
export interface TopologySettings {
  readonly brokers: number
  readonly brokerKind: 'mosquitto' | 'nats'
  readonly brokerPersistence: MosquittoPersistence | undefined
  readonly replicas: number
  readonly postgres: boolean
  readonly applyDelaysMs: readonly number[]
  readonly websockets: boolean
  readonly brokerConfig: string
  readonly keepDirectory: boolean
  readonly startTimeoutMs: number
  readonly binaries: NonNullable<TopologyOptions['binaries']>
}

/**
 * Checks the options for consistency before anything is started and fills in
 * the defaults; throws a {@link TopologyError} saying which option to change.
 *
 * @example
 * const { brokers, brokerKind } = resolveTopologySettings({})
 */
export function resolveTopologySettings(options: TopologyOptions): TopologySettings {
  const brokers = wholeNumber('brokers', options.brokers ?? 1)
  const replicas = wholeNumber('replicas', options.replicas ?? 0)
  const postgres = options.postgres ?? replicas > 0
  if (!postgres && replicas > 0) {
    throw new TopologyError(
      `replicas: ${replicas} needs a primary to replicate from, but postgres is false. Set postgres: true or replicas: 0.`,
    )
  }
  const delay = options.replicaApplyDelayMs ?? 0
  const applyDelaysMs = typeof delay === 'number' ? Array.from({ length: replicas }, () => delay) : [...delay]
  if (applyDelaysMs.length !== replicas) {
    throw new TopologyError(
      `replicaApplyDelayMs has ${applyDelaysMs.length} entries for ${replicas} replicas. Give one per replica, or a single number for all.`,
    )
  }
  applyDelaysMs.forEach((value, index) => wholeNumber(`replicaApplyDelayMs[${index}]`, value))
  const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
  if (!(startTimeoutMs > 0)) {
    throw new TopologyError(`startTimeoutMs must be a positive number of milliseconds, got ${startTimeoutMs}.`)
  }
  const brokerKind = resolveBrokerKind(options)
  return Object.freeze({
    brokers,
    brokerKind,
    brokerPersistence: resolveBrokerPersistence(options.brokerPersistence, brokerKind),
    replicas,
    postgres,
    applyDelaysMs: Object.freeze(applyDelaysMs),
    websockets: options.websockets ?? false,
    brokerConfig: options.brokerConfig ?? '',
    keepDirectory: options.keepDirectory ?? false,
    startTimeoutMs,
    binaries: Object.freeze({ ...options.binaries }),
  })
}

function resolveBrokerKind(options: TopologyOptions): 'mosquitto' | 'nats' {
  const kind = options.brokerKind ?? 'mosquitto'
  if (kind !== 'mosquitto' && kind !== 'nats') {
    throw new TopologyError(`brokerKind must be 'mosquitto' or 'nats', got ${JSON.stringify(kind)}.`)
  }
  if (kind === 'nats' && options.websockets === true) {
    throw new TopologyError(
      "websockets: true asks for MQTT over websockets, which nats-server does not offer (its websocket listener speaks the NATS protocol). Drop websockets, or use brokerKind: 'mosquitto'.",
    )
  }
  return kind
}

function resolveBrokerPersistence(
  option: TopologyOptions['brokerPersistence'],
  kind: 'mosquitto' | 'nats',
): MosquittoPersistence | undefined {
  if (option === undefined || option === false) {
    return undefined
  }
  if (kind === 'nats') {
    throw new TopologyError(
      "brokerPersistence configures Mosquitto's persistence; a NATS cluster always keeps MQTT sessions and retained messages in JetStream on disk. Drop brokerPersistence with brokerKind: 'nats'.",
    )
  }
  const seconds = option === true ? DEFAULT_AUTOSAVE_INTERVAL_SECONDS : (option.autosaveIntervalSeconds ?? DEFAULT_AUTOSAVE_INTERVAL_SECONDS)
  return Object.freeze({ autosaveIntervalSeconds: wholeNumber('brokerPersistence.autosaveIntervalSeconds', seconds) })
}

function wholeNumber(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TopologyError(`${option} must be a whole number of at least 0, got ${value}.`)
  }
  return value
}
