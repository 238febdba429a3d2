import { injectableParameters, type DependencyContainer, type InjectionToken } from './container.js'
import { UnresolvableDependencyError } from './errors/unresolvable-dependency-error.js'

/** Types that say nothing the container can resolve: what an interface, a union or a primitive parameter is emitted as. */
const NO_TOKEN = new Set<unknown>([undefined, Object, String, Number, Boolean, Symbol, BigInt, Array, Function, Promise])

const DECORATOR_SETTINGS = 'decorators need "experimentalDecorators": true and "emitDecoratorMetadata": true in tsconfig.json'

/**
 * Why `token` could not be built by `container`, found without building
 * anything (no constructor runs): a class not marked injectable, a
 * constructor parameter with no token; each named with the classes that lead to
 * it and the fix. `undefined` when nothing is wrong as far as can be seen;
 * a token the container has a registration for is taken as it is. Without
 * `container`, only what is wrong in every container is reported.
 * `perMessage` tokens are registered for each message (`MESSAGE_CONTEXT`).
 *
 * @example
 * const problem = findUnresolvable(DeviceController, app.container, [MESSAGE_CONTEXT])
 * if (problem) throw problem
 */
export function findUnresolvable(
  token: InjectionToken<unknown>,
  container: DependencyContainer | undefined,
  perMessage: readonly unknown[] = [],
  neededBy?: string,
): UnresolvableDependencyError | undefined {
  return walk(token, [], new Set(), container, new Set(perMessage), neededBy)
}

function walk(
  token: unknown,
  path: readonly string[],
  seen: Set<unknown>,
  container: DependencyContainer | undefined,
  perMessage: ReadonlySet<unknown>,
  neededBy: string | undefined,
): UnresolvableDependencyError | undefined {
  if (perMessage.has(token) || seen.has(token)) return undefined
  seen.add(token)
  if (container?.isRegistered(token as InjectionToken<unknown>, true)) return undefined
  // A string or symbol token nothing registers yet may be registered later, or for each message by a
  // middleware (ctx.container.register): only resolving it can tell, so it is not refused at start.
  if (typeof token === 'string' || typeof token === 'symbol') return undefined
  // A DelayedConstructor (tsyringe's delay()) or another object token: taken as it is.
  if (typeof token !== 'function') return undefined
  const name = token.name || 'an anonymous class'
  const here = [...path, name]
  const parameters = injectableParameters(token)
  if (parameters === 'unknown') return undefined
  if (parameters === 'not-injectable') {
    if (token.length === 0) return undefined
    return new UnresolvableDependencyError(
      here.join(' → '),
      'it is not marked injectable, so the container cannot tell what its constructor takes',
      `Add @Repository() above "class ${name}" (a repository), or tsyringe's @injectable() (any other class); ${DECORATOR_SETTINGS}.`,
      neededBy,
    )
  }
  for (let index = 0; index < Math.max(parameters.length, token.length); index++) {
    const parameter = parameters[index]
    if (isDescriptor(parameter)) {
      // @injectAll and optional injections resolve to a list or undefined when nothing is registered.
      if (parameter.multiple || parameter.isOptional) continue
      const problem = walk(parameter.token, here, seen, container, perMessage, neededBy)
      if (problem) return problem
      continue
    }
    if (NO_TOKEN.has(parameter)) {
      const typed = parameter === undefined ? 'has no type metadata (is "emitDecoratorMetadata" on?)' : `is typed ${(parameter as { name: string }).name} to the container (an interface, a union, a primitive or a type-only import)`
      return new UnresolvableDependencyError(
        here.join(' → '),
        `constructor parameter #${index} ${typed}, so nothing can be injected there`,
        `Give it a token: @InjectKysely() for the Kysely instance, tsyringe's @inject(TOKEN) for anything else, or a class type; ${DECORATOR_SETTINGS}.`,
        neededBy,
      )
    }
    const problem = walk(parameter, here, seen, container, perMessage, neededBy)
    if (problem) return problem
  }
  return undefined
}

function isDescriptor(value: unknown): value is { token: unknown; multiple?: boolean; isOptional?: boolean } {
  return typeof value === 'object' && value !== null && 'token' in value
}
