export { BrokerPool, type ActiveBrokerEvent, type FailoverEvent, type BrokerDownEvent, type BrokerUpEvent, type AllDownEvent, type BrokerStatus, type BrokerPoolStats } from './broker-pool.js'
export {
  resolveBrokerPoolOptions, type BrokerPoolOptions, type BrokerConfig, type BrokerPoolMode, type EffectiveBrokerPoolMode, type BrokerHealthOptions,
  type OfflineBufferOptions, type SessionOptions, type ResolvedBrokerPoolOptions,
} from './broker-pool-options.js'
export type { TopologyVerdict } from './topology-check.js'
export type { SessionCounts, SessionAdoptedEvent } from './session-steward.js'
export { BrokerTopologyError, isBrokerTopologyError } from './errors/broker-topology-error.js'
export type { BrokerEndpoint } from './broker-endpoint.js'
export { OfflineBufferFullError, isOfflineBufferFullError } from './errors/offline-buffer-full-error.js'
export { PublishDroppedError, isPublishDroppedError } from './errors/publish-dropped-error.js'
export { Qos2InterruptedError, isQos2InterruptedError } from './errors/qos2-interrupted-error.js'
export { PublishAbandonedError, isPublishAbandonedError } from './errors/publish-abandoned-error.js'
