import type { MessageContext } from './message-context.js'

/** The latest promise of each context's handler. */
const handlers = new WeakMap<MessageContext, Promise<unknown>>()

interface Ownership {
  readonly owner: object
  readonly outcome: Promise<unknown>
  pending: boolean
}

/** Contexts whose outcome a middleware took over (`trackOutcome`). */
const owners = new WeakMap<MessageContext, Ownership>()
/** The outcome registered last for each context, taken over or not: what a middleware further in is doing. */
const latestOutcomes = new WeakMap<MessageContext, Promise<unknown>>()

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
    handlers.set(ctx, result)
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
 * before the gate), replaces it. Such middleware should itself wait for the
 * handler it let run (`runToHandler`), in case a middleware after it did not
 * await `next(ctx)`.
 *
 * @example
 * handle(ctx, next) { const outcome = this.#hold(ctx, next); trackOutcome(ctx, outcome, this); return outcome }
 */
export function trackOutcome(ctx: MessageContext, outcome: Promise<unknown>, owner: object): void {
  // A middleware before this one may drop the promise unawaited; its rejection is reported by whoever settles.
  outcome.catch(noop)
  latestOutcomes.set(ctx, outcome)
  const current = owners.get(ctx)
  if (current && current.pending && current.owner !== owner) return
  const ownership: Ownership = { owner, outcome, pending: true }
  owners.set(ctx, ownership)
  const settled = (): void => {
    ownership.pending = false
  }
  outcome.then(settled, settled)
}

/**
 * Runs `next(ctx)`, then waits for what it started further in even if a
 * middleware there did not await its own `next(ctx)` or gave up early (a
 * timeout): a gate further in (its outcome), then the handler. Resolves with
 * `next`'s result, or rejects with the first error among them.
 *
 * @example
 * const result = await runToHandler(ctx, next)
 */
export async function runToHandler(ctx: MessageContext, next: (ctx: MessageContext) => Promise<unknown>): Promise<unknown> {
  const handlerBefore = handlers.get(ctx)
  const outcomeBefore = latestOutcomes.get(ctx)
  let result: unknown
  try {
    result = await next(ctx)
  } catch (error) {
    await startedFurtherIn(ctx, handlerBefore, outcomeBefore).catch(noop)
    throw error
  }
  await startedFurtherIn(ctx, handlerBefore, outcomeBefore)
  return result
}

async function startedFurtherIn(ctx: MessageContext, handlerBefore: Promise<unknown> | undefined, outcomeBefore: Promise<unknown> | undefined): Promise<void> {
  const outcome = latestOutcomes.get(ctx)
  if (outcome !== undefined && outcome !== outcomeBefore) await outcome
  const handler = handlers.get(ctx)
  if (handler !== undefined && handler !== handlerBefore) await handler
}

/**
 * What the dispatcher waits for before settling: the outcome a middleware
 * took over, else the handler's latest promise; rejects with its error.
 */
export function handlerSettled(ctx: MessageContext): Promise<unknown> | undefined {
  return owners.get(ctx)?.outcome ?? handlers.get(ctx)
}

function noop(): void {}
