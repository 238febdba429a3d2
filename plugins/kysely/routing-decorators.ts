import { readOnly, write } from './database-scope.js'

type AnyMethod = (...args: any[]) => unknown

/**
 * Runs the decorated method in a read-only scope: its queries, raw selects
 * included, go to replicas, and a write is refused before it reaches a
 * database. See `readOnly()` for nesting.
 *
 * @example
 * class DeviceRepository {
 *   @ReadOnly() find(id: string) { return this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst() }
 * }
 */
export function ReadOnly(): MethodDecorator {
  return wrap(readOnly)
}

/**
 * Runs the decorated method in a write scope: all its queries go to the
 * primary. Calling it from a `@ReadOnly()` method throws
 * `WriteInReadOnlyScopeError`.
 *
 * @example
 * class DeviceRepository {
 *   @Write() save(reading: Reading) { return this.db.insertInto('readings').values(reading).execute() }
 * }
 */
export function Write(): MethodDecorator {
  return wrap(write)
}

function wrap(scope: <T>(fn: () => T) => T): MethodDecorator {
  return (_target, key, descriptor) => {
    if (descriptor === undefined && typeof key === 'object' && key !== null && 'kind' in key) {
      // A standard (TC39) decorator's call, (method, context): TypeScript without experimentalDecorators, or tsx/esbuild likewise.
      throw new TypeError('@ReadOnly() and @Write() ran as standard (TC39) decorators: set "experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig.json')
    }
    const original = descriptor.value as unknown as AnyMethod
    if (typeof original !== 'function') throw new TypeError('@ReadOnly() and @Write() decorate methods only')
    // An async method reports a refused scope as a rejection, as its callers expect, not as a synchronous throw.
    const isAsync = original.constructor?.name === 'AsyncFunction'
    const decorated = function (this: unknown, ...args: unknown[]) {
      let result: unknown
      try {
        result = scope(() => original.apply(this, args))
      } catch (error) {
        if (isAsync) return Promise.reject(error)
        throw error
      }
      return isAsyncIterator(result) ? inScope(scope, result) : result
    }
    Object.defineProperty(decorated, 'name', { value: original.name })
    ;(descriptor as PropertyDescriptor).value = decorated
    return descriptor
  }
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown> & AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AsyncIterator<unknown>).next === 'function' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  )
}

/**
 * A method returning a stream (`.stream()`, an async generator) runs its
 * queries when the caller iterates, after the method returned: each step
 * runs in the method's scope again.
 */
function inScope(scope: <T>(fn: () => T) => T, iterator: AsyncIterator<unknown>): AsyncIterableIterator<unknown> {
  const wrapped: AsyncIterableIterator<unknown> = {
    next: (...args: [] | [unknown]) => scope(() => iterator.next(...args)),
    return: (value?: unknown) => scope(() => iterator.return?.(value) ?? Promise.resolve({ done: true, value })),
    throw: (error?: unknown) => scope(() => iterator.throw?.(error) ?? Promise.reject(error)),
    [Symbol.asyncIterator]: () => wrapped,
  }
  return wrapped
}
