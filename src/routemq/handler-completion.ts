import type { MessageContext } from './message-context.js'

const running = new WeakMap<MessageContext, Promise<unknown>>()

interface Ownership {
  readonly owner: object
  pending: boolean
}

/** Contexts whose outcome a middleware took over (`trackOutcome`); the handler's own promise no longer counts. */
const owners = new WeakMap<MessageContext, Ownership>()

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
  if (result instanceof Promise && !owners.has(ctx)) {
    running.set(ctx, result)
    result.catch(noop)
  }
  return result
}

/**
 * For middleware that decides when, and how often, the rest of the chain
 * runs (a health gate holding a message, or running its handler again after
 * an outage): the message settles by `outcome`, not by the handler's own
 * promise, even if a middleware before it did not await `next(ctx)`. While
 * one owner's outcome is pending, another's is ignored (the outermost gate
 * wins); the same owner, or anyone once it settled (a retrying middleware
 * before the gate), replaces it.
 *
 * @example
 * handle(ctx, next) { const outcome = this.#hold(ctx, next); trackOutcome(ctx, outcome, this); return outcome }
 */
export function trackOutcome(ctx: MessageContext, outcome: Promise<unknown>, owner: object): void {
  const current = owners.get(ctx)
  if (current && current.pending && current.owner !== owner) return
  const ownership: Ownership = { owner, pending: true }
  owners.set(ctx, ownership)
  running.set(ctx, outcome)
  const settled = (): void => {
    ownership.pending = false
  }
  outcome.then(settled, settled)
}

/** Resolves when the handler of `ctx` (or the middleware that owns its outcome) settled; rejects with its error. */
export function handlerSettled(ctx: MessageContext): Promise<unknown> | undefined {
  return running.get(ctx)
}

function noop(): void {}
