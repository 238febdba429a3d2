import type { MessageContext } from './message-context.js'

const running = new WeakMap<MessageContext, Promise<unknown>>()

/**
 * Runs the route's handler and remembers its promise, so the dispatcher can
 * wait for the handler even when a middleware forgot to await `next(ctx)`.
 * The remembered promise is marked handled here; the dispatcher reports its
 * rejection.
 *
 * @example
 * const terminal = (ctx) => trackHandler(ctx, handler(ctx))
 */
export function trackHandler(ctx: MessageContext, result: unknown): unknown {
  if (result instanceof Promise) {
    running.set(ctx, result)
    result.catch(noop)
  }
  return result
}

/** Resolves when the handler of `ctx` settled; rejects with its error. */
export function handlerSettled(ctx: MessageContext): Promise<unknown> | undefined {
  return running.get(ctx)
}

function noop(): void {}
