import { inject, injectable, type InjectionToken } from '../routemq/container.js'
import { findUnresolvable } from '../routemq/dependency-check.js'
import { InvalidOptionError } from '../routemq/errors/invalid-option-error.js'
import type { UnresolvableDependencyError } from '../routemq/errors/unresolvable-dependency-error.js'
import { MESSAGE_CONTEXT } from '../routemq/tokens.js'
import { KYSELY } from '../tokens.js'

/**
 * Classes that took `@InjectKysely()` or `@Repository()`, to be checked at
 * start. Only the classes are kept (no instance, no registration in any
 * container), as a decorator has no other way to tell the start about them.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeScript types a class decorator's target as Function
const declared = new Set<Function>()

/**
 * Marks a class as a repository the container builds: resolve it from
 * `ctx.container` (or the application's container) and its constructor
 * receives what it asks for, the Kysely instance through `@InjectKysely()`.
 * `app.start()` fails with `UnresolvableDependencyError` if a class that
 * takes `@InjectKysely()` lacks it, or a repository's constructor asks for
 * something no container can give.
 *
 * @example
 * @Repository()
 * class Devices {
 *   constructor(@InjectKysely() private readonly db: Kysely<Database>) {}
 *   @ReadOnly() find(id: string) { return this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst() }
 * }
 * router.on('devices/{id}/config/get', (ctx) => ctx.container.resolve(Devices).find(ctx.params.id))
 */
export function Repository(): <T>(target: new (...args: any[]) => T) => void {
  return (target: new (...args: any[]) => unknown, ...rest: unknown[]) => {
    refuseStandardDecorators('@Repository()', rest[0])
    injectable()(target)
    declared.add(target)
  }
}

/** The constructor parameter that receives the Kysely instance `LoadBalancingModule` built over the replica pool. */
export function InjectKysely(): ParameterDecorator {
  const decorate = inject(KYSELY) as ParameterDecorator
  return (target, key, index) => {
    decorate(target, key, index)
    // On a constructor parameter, `target` is the class.
    if (typeof target === 'function') declared.add(target)
  }
}

/**
 * The first declared repository (or class taking `@InjectKysely()`) that no
 * container could build: not marked injectable, or a constructor parameter
 * with no token. Tokens are not looked up, as they may belong to another
 * application's container.
 */
export function findUnbuildableRepository(): UnresolvableDependencyError | undefined {
  for (const target of declared) {
    const problem = findUnresolvable(target as InjectionToken<unknown>, undefined, [MESSAGE_CONTEXT])
    if (problem) return problem
  }
  return undefined
}

/**
 * A TypeScript project without `experimentalDecorators` runs decorators as
 * standard ones, `(value, context)`: tsyringe then sees no constructor
 * parameters and every resolve fails. Said at the class, once, instead.
 */
export function refuseStandardDecorators(decorator: string, context: unknown): void {
  if (typeof context === 'object' && context !== null && 'kind' in context) {
    throw new InvalidOptionError(
      'compilerOptions.experimentalDecorators',
      `${decorator} ran as a standard (TC39) decorator; this package's decorators are TypeScript's experimental ones: set "experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig.json (tsx and esbuild read them there too)`,
    )
  }
}
