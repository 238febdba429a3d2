import { AsyncLocalStorage } from 'node:async_hooks'
import type { MessageContext } from './message-context.js'

const scope = new AsyncLocalStorage<MessageContext>()

/**
 * The message whose middleware or handler is running, across awaits and
 * nested calls; `undefined` outside message handling. Plugins use it to tie
 * work (a database read, a region preference) to the message that caused it.
 *
 * @example
 * async function audit() { console.log('for', currentMessage()?.topic) }
 */
export function currentMessage(): MessageContext | undefined {
  return scope.getStore()
}

/** Runs `fn` with `ctx` as the current message. */
export function runInMessageScope<R>(ctx: MessageContext, fn: () => R): R {
  return scope.run(ctx, fn)
}
