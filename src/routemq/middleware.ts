import type { MessageContext } from './message-context.js'
import { tracedLayer } from './tracing.js'

/** Passes the message on to the next middleware, or to the handler after the last. */
export type Next = (ctx: MessageContext) => Promise<unknown>

/**
 * Middleware as a class: `handle` may act before and after `next(ctx)`, or
 * return without calling it to stop the message there.
 *
 * @example
 * class Timing implements Middleware {
 *   async handle(ctx: MessageContext, next: Next) {
 *     const start = performance.now()
 *     try { return await next(ctx) } finally { console.log(ctx.topic, performance.now() - start) }
 *   }
 * }
 */
export interface Middleware {
  handle(ctx: MessageContext, next: Next): unknown
}

/** Middleware as a plain function with the same contract as `Middleware.handle`. */
export type MiddlewareFunction = (ctx: MessageContext, next: Next) => unknown

/** Either form of middleware. */
export type MiddlewareLike = Middleware | MiddlewareFunction

/**
 * Builds the onion once, at route registration: each layer is a function that
 * already holds the next one, so a dispatch allocates no closures. Every layer
 * returns a promise, even when the middleware is synchronous or throws.
 *
 * @example
 * const run = composeMiddleware([auth, audit], (ctx) => handler(ctx))
 * await run(ctx)
 */
export function composeMiddleware(middleware: readonly MiddlewareLike[], terminal: (ctx: MessageContext) => unknown): Next {
  let next: Next = toLayer(tracedLayer('handler', (ctx: MessageContext) => terminal(ctx)))
  for (let i = middleware.length - 1; i >= 0; i--) {
    const layer = middleware[i]!
    const downstream = next
    const name = `middleware ${middlewareName(layer, i)}`
    next =
      typeof layer === 'function'
        ? toLayer(tracedLayer(name, (ctx: MessageContext) => layer(ctx, downstream)))
        : toLayer(tracedLayer(name, (ctx: MessageContext) => layer.handle(ctx, downstream)))
  }
  return next
}

/** A middleware's function or class name for its span, else its position in the chain (from 1). */
function middlewareName(layer: MiddlewareLike, index: number): string {
  const name = typeof layer === 'function' ? layer.name : layer.constructor?.name
  return name && name !== 'Object' ? name : `#${index + 1}`
}

function toLayer(run: (ctx: MessageContext) => unknown): Next {
  return (ctx) => {
    try {
      return Promise.resolve(run(ctx))
    } catch (error) {
      return Promise.reject(error)
    }
  }
}
