import type { DependencyContainer, InjectionToken } from './container.js'
import { findUnresolvable } from './dependency-check.js'
import type { MessageProperties, PublishOptions, QoS } from './mqtt-transport.js'
import type { MessageState } from './message-state.js'
import type { ParkingLot } from './message-parking.js'
import { MESSAGE_CONTEXT } from './tokens.js'
import { UnresolvableDependencyError } from './errors/unresolvable-dependency-error.js'

/** Parameters taken from a route's `{name}` levels. */
export type RouteParams = Readonly<Record<string, string>>

/** Publishes from inside a handler; objects are sent as JSON. */
export type Publish = (topic: string, payload: unknown, options?: PublishOptions) => Promise<void>

/** What a context knows about the route that matched. */
export interface MatchedRoute {
  /** The full pattern, group prefix included, e.g. `devices/{id}/status`. */
  readonly pattern: string
  /** The filter subscribed to, e.g. `$share/workers/devices/+/status`. */
  readonly subscription: string
  readonly name: string | undefined
}

/** Everything a `MessageContext` is built from: its public fields (documented there), and the container its own child container derives from. */
export type MessageContextInit<P extends RouteParams> = Pick<
  MessageContext<P>,
  'topic' | 'params' | 'payload' | 'raw' | 'qos' | 'retain' | 'dup' | 'properties' | 'broker' | 'route' | 'publish'
> & {
  readonly container: DependencyContainer
  /** Who counts this message's handler slot (the dispatcher), so that a waiting middleware can give it back. */
  readonly parking?: ParkingLot
}

let parkingLotOfContext: (ctx: MessageContext) => ParkingLot | undefined

/**
 * One inbound message on its way through middleware to a handler.
 *
 * @example
 * router.on('devices/{id}/telemetry', async (ctx) => {
 *   const reading = ctx.payload as { celsius: number }
 *   await ctx.publish(`devices/${ctx.params.id}/ack`, { ok: true }, { qos: 1 })
 * })
 */
export class MessageContext<P extends RouteParams = RouteParams> {
  /** The concrete topic the message was published to. */
  readonly topic: string
  /** Values of the route's `{name}` levels. */
  readonly params: P
  /** The body: parsed JSON when it is JSON, a `string` on text routes, else the raw `Buffer`. */
  readonly payload: unknown
  /** The body exactly as received. */
  readonly raw: Buffer
  readonly qos: QoS
  readonly retain: boolean
  /** True when the broker says this may be a redelivery. */
  readonly dup: boolean
  /** MQTT 5 properties; `undefined` under MQTT 3.1.1 or when none were sent. */
  readonly properties: MessageProperties | undefined
  /** Label of the broker connection that delivered the message. */
  readonly broker: string
  readonly route: MatchedRoute
  /** Where middleware leaves data for later middleware and the handler (`ctx.state.geo`, ...). */
  readonly state: MessageState = {}
  /**
   * Publishes a message; resolves once the broker acknowledged it (QoS ≥ 1).
   * With several brokers it leaves through the one this message came from
   * (`via: ctx.broker`) while that one is connected, so a reply reaches the
   * device that asked; pass another `via` to choose.
   */
  readonly publish: Publish
  readonly #parent: DependencyContainer
  readonly #parking: ParkingLot | undefined
  #container: DependencyContainer | undefined

  static {
    parkingLotOfContext = (ctx) => ctx.#parking
  }

  constructor(init: MessageContextInit<P>) {
    this.topic = init.topic
    this.params = init.params
    this.payload = init.payload
    this.raw = init.raw
    this.qos = init.qos
    this.retain = init.retain
    this.dup = init.dup
    this.properties = init.properties
    this.broker = init.broker
    this.route = init.route
    const publish = init.publish
    const broker = init.broker
    this.publish = (topic, payload, options) => publish(topic, payload, options?.via === undefined ? { ...options, via: broker } : options)
    this.#parent = init.container
    this.#parking = init.parking
  }

  /**
   * This message's own DI scope: a child of the application's container in
   * which `MESSAGE_CONTEXT` resolves to this context. Created on first use.
   */
  get container(): DependencyContainer {
    if (!this.#container) {
      this.#container = namedResolutionFailures(this.#parent.createChildContainer())
      this.#container.register(MESSAGE_CONTEXT, { useValue: this })
    }
    return this.#container
  }

  /** The first value of an MQTT 5 user property, or `undefined`. */
  userProperty(name: string): string | undefined {
    const value = this.properties?.userProperties?.[name]
    return typeof value === 'string' ? value : value?.[0]
  }
}

/** @internal The parking lot a context was created with (see `parkMessage`). */
export function parkingLotOf(ctx: MessageContext): ParkingLot | undefined {
  return parkingLotOfContext(ctx)
}

/**
 * `container`, whose `resolve` turns tsyringe's own failure to build a class
 * ("TypeInfo not known for ...") into `UnresolvableDependencyError` naming
 * the class and the fix (the original as its cause). Only the outermost
 * call converts: tsyringe resolves constructor parameters through the same
 * method, and rewraps what they throw.
 */
function namedResolutionFailures(container: DependencyContainer): DependencyContainer {
  const resolve = container.resolve.bind(container) as (token: InjectionToken<unknown>, ...rest: unknown[]) => unknown
  let depth = 0
  // A named error a parameter's provider threw (a part not configured), which tsyringe rewraps as a plain Error.
  let inner: UnresolvableDependencyError | undefined
  const named = (token: InjectionToken<unknown>, ...rest: unknown[]): unknown => {
    if (depth === 0) inner = undefined
    depth++
    try {
      return resolve(token, ...rest)
    } catch (error) {
      if (depth > 1) {
        if (error instanceof UnresolvableDependencyError) inner ??= error
        throw error
      }
      const problem = findUnresolvable(token, container, [MESSAGE_CONTEXT])
      if (problem) throw new UnresolvableDependencyError(problem.target, problem.problem, problem.fix, undefined, error)
      if (inner && error !== inner) throw new UnresolvableDependencyError(`${nameOf(token)} → ${inner.target}`, inner.problem, inner.fix, undefined, error)
      // What the check above cannot see without building: a token nothing registers (it may be registered per
      // message, so it is not refused at start), or a tsyringe that keeps its type records elsewhere.
      const said = error instanceof Error ? error.message : ''
      const unregistered = /unregistered dependency token: "?([^"\n]+)"?/.exec(said)
      if (unregistered) {
        throw new UnresolvableDependencyError(nameOf(token), `nothing registers the token ${unregistered[1]} in this application's container`, "Register it in a module's register(container), in a middleware (ctx.container.register), or configure the part that provides it.", undefined, error)
      }
      const unknownType = /TypeInfo not known for "?([^"\n]+)"?/.exec(said)
      if (unknownType) {
        throw new UnresolvableDependencyError(`${nameOf(token)} → ${unknownType[1]}`, 'it is not marked injectable, so the container cannot tell what its constructor takes', "Add @Repository() (a repository) or tsyringe's @injectable() (any other class) above it.", undefined, error)
      }
      throw error
    } finally {
      depth--
    }
  }
  container.resolve = named as DependencyContainer['resolve']
  return container
}

function nameOf(token: InjectionToken<unknown>): string {
  return typeof token === 'function' ? token.name : typeof token === 'symbol' ? (token.description ?? 'a symbol') : typeof token === 'string' ? token : 'a delayed constructor'
}
