import type { InjectionToken } from './container.js'
import type { MessageContext, MatchedRoute, RouteParams } from './message-context.js'
import type { MiddlewareLike, Next } from './middleware.js'
import type { QoS } from './mqtt-transport.js'
import type { TopicPattern } from './topic-pattern.js'

type ParamNames<T extends string> = T extends `${string}{${infer Name}}${infer Rest}` ? Name | ParamNames<Rest> : never

/**
 * The `ctx.params` type of a topic pattern, worked out from its `{name}` levels:
 * exactly those names, so a misspelt one does not compile. A pattern that is no
 * literal (a `string` built at run time) gives the open `RouteParams`.
 * Routes of a group also get the names of the group's prefix (see `RouteRegistrar`).
 *
 * @example
 * type P = TopicParams<'devices/{id}/sensors/{sensor}'> // { readonly id: string; readonly sensor: string }
 */
export type TopicParams<T extends string> = string extends T ? RouteParams : { readonly [K in ParamNames<T>]: string }

/** A route handler. Its promise settling is what lets the message be acknowledged. */
export type Handler<P extends RouteParams = RouteParams> = (ctx: MessageContext<P>) => unknown

/**
 * A handler given as a class and a method name: the class is resolved from the
 * message's own DI scope for every message, so it may inject per-message
 * services and `MESSAGE_CONTEXT`.
 *
 * @example
 * router.on('devices/{id}/config', [DeviceController, 'config'])
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- unparameterised, it stands for an action of any controller (keyof unknown would be never)
export type ControllerAction<C = any> = readonly [InjectionToken<C>, keyof C & string]

/** Either form of handler. */
export type HandlerTarget<P extends RouteParams = RouteParams> = Handler<P> | ControllerAction

/**
 * How the body reaches `ctx.payload`:
 * - `'auto'` (default): parsed when it is JSON (by MQTT 5 content type, or by
 *   its first character), otherwise the raw `Buffer`;
 * - `'json'`: must be JSON; anything else fails that message with `MalformedPayloadError`;
 * - `'text'`: a UTF-8 string;
 * - `'buffer'`: the raw `Buffer`.
 */
export type PayloadFormat = 'auto' | 'json' | 'text' | 'buffer'

/**
 * What happens to a message whose middleware or handler threw:
 * - `'ack'` (default): logged, counted, acknowledged; the broker will not send it again;
 * - `'redeliver'`: logged, counted, left unacknowledged, so the broker sends it
 *   again when a persistent session resumes (it takes one of the broker's
 *   in-flight slots until then);
 * - `{ deadLetter: 'dead' }`: republished at QoS 1 to `dead/<original topic>`;
 *   the original is acknowledged only after the broker accepted that copy.
 */
export type ErrorPolicy = 'ack' | 'redeliver' | { readonly deadLetter: string }

/** Per-route options of `Router.on`. */
export interface RouteOptions {
  /** Subscription QoS. Default 0, as in RouteMQ; use 1 for at-least-once. */
  readonly qos?: QoS
  /** Route middleware, run after the group's. */
  readonly middleware?: readonly MiddlewareLike[]
  /** Subscribe as a shared subscription: `true` uses the router's default group, a string names the group. */
  readonly shared?: boolean | string
  readonly payload?: PayloadFormat
  /** Overrides the application's error policy for this route. */
  readonly onError?: ErrorPolicy
  /** A name for logs and metrics; defaults to the pattern. */
  readonly name?: string
}

/** Options of `Router.group`; `Prefix` is the prefix's literal type, whose `{name}` levels type the group's `ctx.params`. */
export interface GroupOptions<Prefix extends string = string> {
  /** Topic levels put before every route of the group. */
  readonly prefix?: Prefix
  /** Middleware run before each route's own. */
  readonly middleware?: readonly MiddlewareLike[]
}

/** A registered route, compiled and ready to dispatch. */
export interface Route extends MatchedRoute {
  /** The MQTT 5 subscription identifier of the route's subscription: its position, from 1. */
  readonly identifier: number
  readonly topic: TopicPattern
  readonly qos: QoS
  readonly shared: string | undefined
  readonly payload: PayloadFormat
  readonly onError: ErrorPolicy | undefined
  /** Group middleware then route middleware, in the order they run (for modules that look for their own, like health gates). */
  readonly middleware: readonly MiddlewareLike[]
  /** Group middleware, route middleware, then the handler, composed once. */
  readonly run: Next
  /** The class (or token) of a `[Controller, 'method']` handler, resolved per message; checked at `start()`. */
  readonly controller: InjectionToken<unknown> | undefined
}
