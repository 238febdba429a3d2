export { Application, type ApplicationOptions, type StopResult } from './application.js'
export { Router, type RouterOptions, type RouteRegistrar, type RouteMatch } from './router.js'
export type {
  Route, RouteOptions, GroupOptions, Handler, HandlerTarget, ControllerAction, TopicParams, PayloadFormat, ErrorPolicy,
} from './route.js'
export { composeMiddleware, type Middleware, type MiddlewareFunction, type MiddlewareLike, type Next } from './middleware.js'
export { MessageContext, type MessageContextInit, type MatchedRoute, type RouteParams, type Publish } from './message-context.js'
export type { MessageState } from './message-state.js'
export { currentMessage } from './message-scope.js'
export {
  MessageDispatcher, type MessageDispatcherOptions, type DispatchStats, type DrainResult, type MessageOrdering,
} from './message-dispatcher.js'
export type { RouteMqModule } from './route-mq-module.js'
export type {
  MqttTransport, InboundMessage, MessageReceiver, MessageProperties, PublishOptions, Subscription, QoS, UserProperties,
} from './mqtt-transport.js'
export { DefaultMqttTransport, type DefaultMqttTransportOptions, type MqttTlsOptions } from './default-mqtt-transport.js'
export { AckSequencer, type AckOrder } from './ack-sequencer.js'
export { parseTopicPattern, joinTopic, type TopicPattern, type TopicLevel } from './topic-pattern.js'
export { TopicTrie } from './topic-trie.js'
export { ConsoleLogger, silentLogger, type Logger, type LogFields, type LogLevel, type ConsoleLoggerOptions } from './logger.js'
export { redactUrl } from './redact-url.js'
export { MQTT_TRANSPORT, APPLICATION, ROUTER, LOGGER, MESSAGE_CONTEXT } from './tokens.js'
export { RouteMqError, isRouteMqError } from './errors/route-mq-error.js'
export { InvalidRouteError, isInvalidRouteError } from './errors/invalid-route-error.js'
export { RouteConflictError, isRouteConflictError } from './errors/route-conflict-error.js'
export { MalformedPayloadError, isMalformedPayloadError } from './errors/malformed-payload-error.js'
export { ApplicationStateError, isApplicationStateError } from './errors/application-state-error.js'
export { InvalidOptionError, isInvalidOptionError } from './errors/invalid-option-error.js'
export { TransportClosedError, isTransportClosedError } from './errors/transport-closed-error.js'
export { UnsupportedMqttClientError, isUnsupportedMqttClientError } from './errors/unsupported-mqtt-client-error.js'
export { ConnectionFailedError, isConnectionFailedError } from './errors/connection-failed-error.js'
export { SubscriptionRejectedError, isSubscriptionRejectedError } from './errors/subscription-rejected-error.js'
export { InvalidTopicError, isInvalidTopicError } from './errors/invalid-topic-error.js'
