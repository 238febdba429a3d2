/**
 * routemq-load-balancing: high availability for RouteMQ MQTT applications.
 * The RouteMQ kernel, the balancing engine and the plugins built on it.
 */
export {
  Application, type ApplicationOptions, type PublishPropertiesProvider, type StopResult,
  Router, type RouterOptions, type RouteRegistrar, type RouteMatch,
  type Route, type RouteOptions, type GroupOptions, type Handler, type HandlerTarget, type ControllerAction,
  type TopicParams, type PayloadFormat, type ErrorPolicy,
  composeMiddleware, type Middleware, type MiddlewareFunction, type MiddlewareLike, type Next,
  MessageContext, type MessageContextInit, type MatchedRoute, type RouteParams, type Publish,
  type MessageState,
  currentMessage, parkMessage, type ParkingLot, trackOutcome, runToHandler,
  MessageDispatcher, type MessageDispatcherOptions, type DispatchStats, type DrainResult, type MessageOrdering,
  type RouteMqModule,
  type MqttTransport, type InboundMessage, type MessageReceiver, type MessageProperties, type PublishOptions,
  type Subscription, type QoS, type UserProperties,
  DefaultMqttTransport, type DefaultMqttTransportOptions, type MqttTlsOptions,
  AckSequencer, type AckOrder,
  parseTopicPattern, joinTopic, type TopicPattern, type TopicLevel,
  TopicTrie,
  ConsoleLogger, silentLogger, type Logger, type LogFields, type LogLevel, type ConsoleLoggerOptions,
  type LogFormat, pinoLogger, type PinoLike,
  redactUrl,
  MQTT_TRANSPORT, APPLICATION, ROUTER, LOGGER, MESSAGE_CONTEXT,
  RouteMqError, isRouteMqError,
  InvalidRouteError, isInvalidRouteError,
  RouteConflictError, isRouteConflictError,
  MalformedPayloadError, isMalformedPayloadError,
  ApplicationStateError, isApplicationStateError,
  InvalidOptionError, isInvalidOptionError,
  TransportClosedError, isTransportClosedError,
  UnsupportedMqttClientError, isUnsupportedMqttClientError,
  ConnectionFailedError, isConnectionFailedError,
  SubscriptionRejectedError, isSubscriptionRejectedError,
  InvalidTopicError, isInvalidTopicError,
  UnresolvableDependencyError, isUnresolvableDependencyError,
  TRACER_NAME,
} from './routemq/index.js'
export {
  Backend, type BackendOptions, type BackendView, type EjectionOptions,
  BackendSet, type BackendSetOptions, type BackendStateChange, type BackendEjection, type PickOptions,
  type BalancingStrategy, type StrategyName,
  RoundRobinStrategy, RandomStrategy, WeightedStrategy, LeastOutstandingStrategy, P2cEwmaStrategy, PriorityStrategy,
  createStrategy, isStrategyName, STRATEGY_NAMES,
  Ewma, HealthTracker, type HealthState, type HealthThresholds,
  DecorrelatedJitterBackoff, type BackoffOptions, LatencyWindow,
} from './balancing/index.js'
export { TypedEvent, type Disposer } from './typed-event.js'
export {
  type HealthCheckDefinition, type HealthCheckSource, type CheckObservation, type CheckStatus, type HealthStatus,
  type HealthSummary, type HealthChange,
  HealthMonitor, type HealthMonitorOptions, type FailoverCallback,
  healthGate, HealthGate, type HealthGateOptions, type HealthGateStats, type SpoolOptions, type SpoolStats,
  HealthServer, type HealthServerOptions, type HealthResponse, type CheckResult, type ResponseStatus,
  HEALTH_HTTP_DEFAULTS, type HealthHttpLimits, type HealthHttpOptions,
  GracefulShutdown, type GracefulShutdownOptions, type ShutdownSteps,
  type MetricsSource,
  scrubSecrets, preciseNow,
  DependencyUnavailableError, isDependencyUnavailableError, type GateRejection,
} from './health/index.js'
export {
  StatusPage, type StatusPageOptions, type StatusPageContext,
  type StatusReport, type StatusState, type BrokerRow, type PrimaryRow, type ReplicaRow, type GateRow, type RegionRow, type CheckRow,
} from './health/index.js'
export {
  LoadBalancingMetrics, type LoadBalancingMetricsOptions, type MeasuredApplication, type MeasuredGate,
  type MeasuredLookups, type MeasuredGeoGate, isMeasuredLookups, isMeasuredGeoGate,
  type MeasuredPool, type PoolMetricsSnapshot, type BackendMetrics, type RequestObserved,
  healthScore, HealthScoreWindow, type HealthScoreInputs,
} from './metrics/index.js'
export { HEALTH_MONITOR, METRICS, BROKER_POOL, REPLICA_POOL, KYSELY, GEO_RESOLVER, LOAD_BALANCING_OPTIONS } from './tokens.js'
export {
  BrokerPool, type ActiveBrokerEvent, type FailoverEvent, type BrokerDownEvent, type BrokerUpEvent, type AllDownEvent, type BrokerStatus, type BrokerPoolStats,
  resolveBrokerPoolOptions, type BrokerPoolOptions, type BrokerConfig, type BrokerPoolMode, type EffectiveBrokerPoolMode, type BrokerHealthOptions,
  type OfflineBufferOptions, type SessionOptions, type ResolvedBrokerPoolOptions, type BrokerEndpoint,
  type TopologyVerdict, type SessionCounts, type SessionAdoptedEvent, BrokerTopologyError, isBrokerTopologyError,
  OfflineBufferFullError, isOfflineBufferFullError,
  PublishDroppedError, isPublishDroppedError,
  Qos2InterruptedError, isQos2InterruptedError,
  PublishAbandonedError, isPublishAbandonedError,
} from '../plugins/mqtt/index.js'
export {
  ReplicaPool, type QueryServed, type ReplicaStatus, type ReplicaPoolStats,
  resolveReplicaPoolOptions, type ReplicaPoolOptions, type PgServerConfig, type ConsistencyMode, type ResolvedReplicaPoolOptions,
  type ResolvedPgServer,
  ReplicatedPostgresDialect, ReadOnly, Write, readOnly, write, currentScope, type DatabaseScope, type ScopeMode,
  withConsistencyKey, WRITE_POSITION_PROPERTY, migrateToLatest, type MigrateOptions,
  PrimaryUnavailableError, isPrimaryUnavailableError,
  MigrationFailedError, isMigrationFailedError, type MigrationTarget,
  NoReplicaAvailableError, isNoReplicaAvailableError,
  WriteInReadOnlyScopeError, isWriteInReadOnlyScopeError,
  TransactionAbortedError, isTransactionAbortedError,
  QueryTimeoutError, isQueryTimeoutError,
  ReplicaPoolClosedError, isReplicaPoolClosedError,
} from '../plugins/kysely/index.js'
export {
  GeoResolver, type GeoResolverOptions, type GeoLocation, type GeoReason, type RegionEndpoints, type GeoResolverStats,
  RegionRules, type RegionRule, type Place, type RegionMatch,
  geoRegion, type GeoRegionOptions, type IpSource,
  geoGate, GeoGate, type GeoGateOptions, type GeoPlaces, type GeoGateStats,
  DeviceRedirects, brokerPoolHealth, type DeviceRedirectsOptions, type DeviceRedirect, type BrokerUrlHealth, type BrokerUrlState, type BrokerPoolLike,
  classifyAddress, type AddressClass, continentOfCountry,
  GeoDatabaseError, isGeoDatabaseError,
  GeoBlockedError, isGeoBlockedError, type GeoBlockReason,
  UntrustedLocationError, isUntrustedLocationError,
} from '../plugins/geoip/index.js'
export {
  LoadBalancingModule, type LoadBalancingAsyncOptions,
  validateLoadBalancingOptions, type LoadBalancingOptions, type DatabaseOptions, type HealthOptions,
  loadBalancingOptionsFromEnv, infraOptionsFromEnv, loggerFromEnv, ENV_VARIABLES,
  Repository, InjectKysely,
  HealthModule, type HealthModuleOptions,
  planInfra, DEMO_TOPOLOGY, type InfraPlanOptions, runCli,
} from './composition/index.js'
export {
  type InfraOptions, type InfraPlan, type PlannedBroker,
  renderHaproxy, renderNginx, renderKubernetes, renderKubernetesObjects, mqttConnectPacket, toYaml, type YamlValue,
  renderGrafanaDashboard, grafanaDashboard, type Dashboard, type DashboardPanel, type DashboardTarget,
  renderAlertRules, alertRules, type AlertRule, type MonitoringPlan,
} from '../plugins/infra/index.js'
