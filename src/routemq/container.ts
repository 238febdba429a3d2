// The one module that loads reflect-metadata: tsyringe needs the Reflect
// polyfill before any of its decorators run, so everything in the package
// reaches tsyringe through here.
import 'reflect-metadata'
import { createRequire } from 'node:module'
import { injectable } from 'tsyringe'

export { container as rootContainer, injectable, inject, Lifecycle } from 'tsyringe'
export type { DependencyContainer, InjectionToken } from 'tsyringe'

/**
 * tsyringe's record of the classes `@injectable()` marked, with their
 * constructor parameters' tokens. It is not in tsyringe's public API (which
 * can only find out by building the class, running its constructor), so it is
 * read from the module tsyringe itself loads, and checked with a probe class:
 * `undefined` if a tsyringe version keeps it elsewhere, and then nothing is
 * checked before a class is built.
 */
const typeInfo: ReadonlyMap<unknown, readonly unknown[]> | undefined = (() => {
  try {
    const found = (createRequire(import.meta.url)('tsyringe/dist/cjs/dependency-container.js') as { typeInfo?: unknown }).typeInfo
    if (!(found instanceof Map)) return undefined
    class Probe {
      constructor(readonly value: string) {}
    }
    Reflect.defineMetadata('design:paramtypes', [String], Probe)
    injectable()(Probe)
    return found.has(Probe) ? (found as ReadonlyMap<unknown, readonly unknown[]>) : undefined
  } catch {
    return undefined
  }
})()

/**
 * What the container knows of a class: the tokens of its constructor's
 * parameters when it is marked injectable, `'not-injectable'` when it is
 * not, `'unknown'` when this tsyringe does not say.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- a class decorator's target, as TypeScript types it
export function injectableParameters(target: Function): readonly unknown[] | 'not-injectable' | 'unknown' {
  if (!typeInfo) return 'unknown'
  return typeInfo.get(target) ?? 'not-injectable'
}
