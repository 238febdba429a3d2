import { STRATEGY_NAMES } from '../../src/balancing/create-strategy.js'
import { MQTT_TLS_OPTIONS_SHAPE } from '../../src/routemq/plugin-api.js'
import {
  byKind, identifier, isBoolean, isLogger, listOf, matching, nonEmptyString, oneOf, recordOf, regionName, required, shapeOf, wholeNumber,
  finiteNumber, milliseconds, mqttBinaryString, mqttString, type OptionShape,
} from '../../src/routemq/plugin-api.js'
import type { BrokerConfig, BrokerHealthOptions, BrokerPoolOptions, OfflineBufferOptions, SessionOptions } from './broker-pool-options.js'


const BROKER_CONFIG_SHAPE: OptionShape<BrokerConfig> = {
  url: required(nonEmptyString, 'give a URL such as "mqtt://broker-1:1883"'),
  id: identifier,
  weight: finiteNumber(0),
  region: regionName,
  username: mqttString({ nonEmpty: false }),
  password: mqttBinaryString,
  usernameEnv: nonEmptyString,
  passwordEnv: nonEmptyString,
  tls: shapeOf(MQTT_TLS_OPTIONS_SHAPE),
}

const SESSION_OPTIONS_SHAPE: OptionShape<SessionOptions> = {
  adoptOrphans: isBoolean,
  orphanAfterSeconds: wholeNumber(1, 86_400),
}

const BROKER_HEALTH_OPTIONS_SHAPE: OptionShape<BrokerHealthOptions> = {
  probeIntervalMs: milliseconds(1),
  probeTimeoutMs: milliseconds(1),
  rise: wholeNumber(1),
  fall: wholeNumber(1),
  publishAckTimeoutMs: milliseconds(1),
  backoffBaseMs: milliseconds(1),
  backoffCapMs: milliseconds(1),
}

const OFFLINE_BUFFER_OPTIONS_SHAPE: OptionShape<OfflineBufferOptions> = {
  maxMessages: wholeNumber(1),
  maxBytes: wholeNumber(1),
  qos0: oneOf(['queue', 'drop']),
}

/** The keys and types of `BrokerPoolOptions` at every depth; what depends on several options is checked by `resolveBrokerPoolOptions`. */
export const BROKER_POOL_OPTIONS_SHAPE: OptionShape<BrokerPoolOptions> = {
  brokers: required(
    listOf(byKind('must be a URL such as "mqtt://broker-1:1883", or { url, id?, weight?, region?, ... }', { string: true, object: shapeOf(BROKER_CONFIG_SHAPE) }),
      1, 'list at least one broker, e.g. ["mqtt://broker-1:1883"]'),
    'list at least one broker, e.g. ["mqtt://broker-1:1883"]',
  ),
  mode: oneOf(['auto', 'failover', 'all']),
  topologyCheck: isBoolean,
  topologyCheckTimeoutMs: milliseconds(1),
  // Characters every broker takes in a topic level (NATS refuses '.' and spaces).
  group: matching(/^[A-Za-z0-9_-]{1,64}$/, '1 to 64 letters, digits, "-" or "_", e.g. the router\'s sharedGroup'),
  controlTopic: matching(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, 'topic levels of letters, digits, "-" or "_" joined by "/", e.g. "routemq/control"'),
  sessions: shapeOf(SESSION_OPTIONS_SHAPE),
  receiveMaximum: wholeNumber(1, 65_535),
  watchBrokerDrops: isBoolean,
  strategy: oneOf(STRATEGY_NAMES),
  region: regionName,
  // It also names the session's presence and barrier topics, which must stay far below MQTT's 65 535 bytes.
  clientId: mqttString({ nonEmpty: true, maxBytes: 1024 }),
  clean: isBoolean,
  sessionExpirySeconds: wholeNumber(0, 4_294_967_295),
  protocolVersion: oneOf([4, 5], '4 (MQTT 3.1.1) or 5'),
  keepaliveSeconds: wholeNumber(0, 65_535),
  connectTimeoutMs: milliseconds(1),
  startTimeoutMs: milliseconds(1),
  closeTimeoutMs: milliseconds(0),
  ackOrder: oneOf(['arrival', 'completion']),
  health: shapeOf(BROKER_HEALTH_OPTIONS_SHAPE),
  offlineBuffer: shapeOf(OFFLINE_BUFFER_OPTIONS_SHAPE),
  env: recordOf(byKind('must be a string', { string: true })),
  logger: isLogger,
}
