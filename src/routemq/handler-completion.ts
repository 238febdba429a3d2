import type { MessageContext } from './message-context.js'

const running = new WeakMap<MessageContext, Promise<unknown>>()
/** Contexts whose outcome a middleware took over (`trackOutcome`); the handler's own promise no longer counts. */
const owned = new WeakSet<MessageContext>()

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
  if (result instanceof Promise && !owned.has(ctx)) {
    running.set(ctx, result)
    result.catch(noop)
  }
  return result
}

/**
 * For middleware that decides when, and how often, the rest of the chain
 * runs (a health gate holding a message, or running its handler again after
 * an outage): the message settles by `outcome`, not by the handler's own
 * promise, even if a middleware before it did not await `next(ctx)`. The
 * outermost such middleware wins.
 *
 * @example
 * handle(ctx, next) { const outcome = this.#hold(ctx, next); trackOutcome(ctx, outcome); return outcome }
 */
export function trackOutcome(ctx: MessageContext, outcome: Promise<unknown>): void {
  if (owned.has(ctx)) return
  owned.add(ctx)
  running.set(ctx, outcome)
  outcome.catch(noop)
}

/** Resolves when the handler of `ctx` (or the middleware that owns its outcome) settled; rejects with its error. */
export function handlerSettled(ctx: MessageContext): Promise<unknown> | undefined {
  return running.get(ctx)
}

function noop(): void {}
