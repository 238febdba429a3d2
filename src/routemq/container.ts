// The one module that loads reflect-metadata: tsyringe needs the Reflect
// polyfill before any of its decorators run, so everything in the package
// reaches tsyringe through here.
import 'reflect-metadata'

export { container as rootContainer, injectable, inject, Lifecycle } from 'tsyringe'
export type { DependencyContainer, InjectionToken } from 'tsyringe'
