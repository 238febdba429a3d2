import { readOnly, write } from './database-scope.js'

type AnyMethod = (...args: any[]) => any

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
  return (_target, _key, descriptor) => {
    const original = descriptor.value as unknown as AnyMethod
    if (typeof original !== 'function') throw new TypeError('@ReadOnly() and @Write() decorate methods only')
    const decorated = function (this: unknown, ...args: unknown[]) {
      return scope(() => original.apply(this, args))
    }
    Object.defineProperty(decorated, 'name', { value: original.name })
    ;(descriptor as PropertyDescriptor).value = decorated
    return descriptor
  }
}
