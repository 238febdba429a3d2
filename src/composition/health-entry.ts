// The package's `/health` subpath: the health core and HealthModule, which composes it with the
// metrics (so it lives in the composition root), without the plugins an app may not use.
export * from '../health/index.js'
export { HealthModule, type HealthModuleOptions } from './health-module.js'
