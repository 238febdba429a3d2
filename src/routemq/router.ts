import { InvalidOptionError } from './errors/invalid-option-error.js'
import { InvalidRouteError } from './errors/invalid-route-error.js'
import { RouteConflictError } from './errors/route-conflict-error.js'
import { trackHandler } from './handler-completion.js'
import type { MessageContext, RouteParams } from './message-context.js'
import { composeMiddleware, type MiddlewareLike } from './middleware.js'
import type { Subscription } from './mqtt-transport.js'
import { checkOptions, isString, type OptionShape } from './option-shape.js'
import type { GroupOptions, HandlerTarget, Route, RouteOptions, TopicParams } from './route.js'
import { GROUP_OPTIONS_SHAPE, isSharedGroupName, ROUTE_OPTIONS_SHAPE } from './route-options-shape.js'
import { joinTopic, parseTopicPattern } from './topic-pattern.js'
import { TopicTrie } from './topic-trie.js'

/** Options of `Router`. */
export interface RouterOptions {
  /** Group name used by routes declared `{ shared: true }`. Default `'routemq'`. */
  readonly sharedGroup?: string
}

/**
 * The route-declaring surface shared by `Router` and the scope a `group` callback
 * receives. `P` holds the parameters of the enclosing groups' prefixes, which every
 * route declared here gets in `ctx.params` besides its own.
 */
export interface RouteRegistrar<P extends RouteParams = TopicParams<''>> {
  /**
   * Declares a route. `{name}` levels (of the pattern and of the groups' prefixes)
   * match one topic level each and arrive typed in `ctx.params`.
   *
   * @example
   * router.on('devices/{id}/telemetry', async (ctx) => save(ctx.params.id, ctx.payload), { qos: 1 })
   */
  on<T extends string>(topic: T, handler: HandlerTarget<P & TopicParams<T>>, options?: RouteOptions): this
  /**
   * Declares routes under a common prefix and middleware; groups nest.
   *
   * @example
   * router.group({ prefix: 'devices/{id}', middleware: [auth] }, (devices) => {
   *   devices.on('telemetry', (ctx) => save(ctx.params.id, ctx.payload), { qos: 1 })
   *   devices.on('hello', greet)
   * })
   */
  group<Prefix extends string = ''>(options: GroupOptions<Prefix>, register: (group: RouteRegistrar<P & TopicParams<Prefix>>) => void): this
}

/** A route found for a topic, with the topic's parameter values. */
export interface RouteMatch {
  readonly route: Route
  readonly params: RouteParams
  /** The topic split into levels, reused by the dispatcher. */
  readonly levels: readonly string[]
}

const ROUTER_OPTIONS_SHAPE: OptionShape<RouterOptions> = { sharedGroup: isString }

/**
 * RouteMQ's router: maps MQTT topics to middleware and handlers. Routes are
 * compiled when declared (topic trie, composed middleware), so a bad or
 * conflicting route fails at the line that declares it.
 *
 * @example
 * const router = new Router()
 * router.on('devices/{id}/status', (ctx) => console.log(ctx.params.id, ctx.payload), { qos: 1, shared: true })
 */
export class Router implements RouteRegistrar {
  readonly #trie = new TopicTrie<Route>()
  readonly #routes: Route[] = []
  readonly #sharedGroup: string

  constructor(options: RouterOptions = {}) {
    checkOptions(options, ROUTER_OPTIONS_SHAPE, '')
    const group = options.sharedGroup ?? 'routemq'
    if (!isSharedGroupName(group)) {
      throw new InvalidRouteError(`$share/${group}`, 'a shared group name must be non-empty and contain no "/", "+", "#" or "$"')
    }
    this.#sharedGroup = group
  }

  /** The group of `shared: true` routes: `$share/<sharedGroup>/...`. */
  get sharedGroup(): string {
    return this.#sharedGroup
  }

  on<T extends string>(topic: T, handler: HandlerTarget<TopicParams<T>>, options: RouteOptions = {}): this {
    this.#add('', [], topic, handler as HandlerTarget, options)
    return this
  }

  group<Prefix extends string = ''>(options: GroupOptions<Prefix>, register: (group: RouteRegistrar<TopicParams<Prefix>>) => void): this {
    checkGroup('', options, register)
    register(this.#scope(options.prefix ?? '', options.middleware ?? []))
    return this
  }

  /** Every route, in declaration order. */
  get routes(): readonly Route[] {
    return this.#routes
  }

  /** The subscriptions the application must hold: one per route, identified by the route's `identifier`. */
  subscriptions(): Subscription[] {
    return this.#routes.map((route) => ({ topic: route.subscription, qos: route.qos, identifier: route.identifier }))
  }

  /**
   * The route for a concrete topic, or `undefined`.
   *
   * @example
   * router.match('devices/7/status')?.params.id // '7'
   */
  match(topic: string): RouteMatch | undefined {
    const levels = topic.split('/')
    const route = this.#trie.match(levels)
    if (!route) return undefined
    const slots = route.topic.params
    if (slots.length === 0) return { route, params: EMPTY_PARAMS, levels }
    const params: Record<string, string> = {}
    for (const [index, name] of slots) params[name] = levels[index]!
    return { route, params, levels }
  }

  // The parameter types exist only at compile time; at run time every scope is the same object shape.
  #scope<P extends RouteParams>(prefix: string, middleware: readonly MiddlewareLike[]): RouteRegistrar<P> {
    const scope: RouteRegistrar<RouteParams> = {
      on: (topic, handler, options = {}) => {
        this.#add(prefix, middleware, topic, handler as HandlerTarget, options)
        return scope
      },
      group: (options, register) => {
        checkGroup(prefix, options, register)
        register(this.#scope(joinTopic(prefix, options.prefix ?? ''), [...middleware, ...(options.middleware ?? [])]))
        return scope
      },
    }
    return scope
  }

  #add(prefix: string, groupMiddleware: readonly MiddlewareLike[], topic: string, handler: HandlerTarget, options: RouteOptions): void {
    // joinTopic takes strings; parseTopicPattern says what else was given.
    const pattern = parseTopicPattern(typeof topic === 'string' ? joinTopic(prefix, topic) : topic)
    checkRouteOptions(pattern.pattern, options, ROUTE_OPTIONS_SHAPE)
    const qos = options.qos ?? 0
    const shared = typeof options.shared === 'string' ? options.shared : options.shared ? this.#sharedGroup : undefined
    const middleware = [...groupMiddleware, ...(options.middleware ?? [])]
    const subscription = shared ? `$share/${shared}/${pattern.filter}` : pattern.filter
    const route: Route = Object.freeze({
      identifier: this.#routes.length + 1,
      pattern: pattern.pattern,
      subscription,
      name: options.name,
      topic: pattern,
      qos,
      shared,
      payload: options.payload ?? 'auto',
      onError: options.onError,
      middleware: Object.freeze(middleware),
      run: composeMiddleware(middleware, toTerminal(pattern.pattern, handler)),
      controller: Array.isArray(handler) ? (handler[0] as Route['controller']) : undefined,
    })
    const existing = this.#trie.insert(pattern.levels, route)
    if (existing) throw new RouteConflictError(pattern.pattern, existing.pattern, pattern.filter)
    this.#routes.push(route)
  }
}

const EMPTY_PARAMS: RouteParams = Object.freeze({})

/**
 * A group's options and callback, refused as the group's route error: the
 * error names the prefix as far as it is a string, never a value of another type.
 */
function checkGroup(outer: string, options: GroupOptions, register: unknown): void {
  const pattern = joinTopic(outer, typeof options?.prefix === 'string' ? options.prefix : '')
  checkRouteOptions(pattern, options, GROUP_OPTIONS_SHAPE)
  if (typeof register !== 'function') {
    throw new InvalidRouteError(pattern, 'group needs a function as its second argument, (group) => { group.on(...) }, that declares its routes')
  }
}

/** Route and group options checked by shape, refused as the route's error so that it names the route. */
function checkRouteOptions<T>(pattern: string, options: T, shape: OptionShape<T>): void {
  try {
    checkOptions(options, shape, '')
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new InvalidRouteError(pattern, `${error.field} ${error.reason}`)
    throw error
  }
}

function toTerminal(pattern: string, handler: HandlerTarget): (ctx: MessageContext) => unknown {
  if (typeof handler === 'function') {
    const handle = handler as (ctx: MessageContext) => unknown
    return (ctx) => trackHandler(ctx, handle(ctx))
  }
  if (Array.isArray(handler) && handler.length === 2 && typeof handler[1] === 'string') {
    const [token, method] = handler
    return (ctx) => {
      const controller = ctx.container.resolve(token) as Record<string, unknown>
      const action = controller[method]
      if (typeof action !== 'function') {
        throw new InvalidRouteError(pattern, `the controller resolved for this route has no method "${method}"`)
      }
      return trackHandler(ctx, action.call(controller, ctx))
    }
  }
  throw new InvalidRouteError(pattern, 'the handler must be a function (ctx) or a [ControllerClass, "method"] pair')
}
