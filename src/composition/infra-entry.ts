// The package's `/infra` subpath: the renderers, and the plan and command that read the module's
// options to feed them (the composition root's job), without the pools themselves.
export * from '../../plugins/infra/index.js'
export { planInfra, DEMO_TOPOLOGY, type InfraPlanOptions } from './plan-infra.js'
export { runCli } from './render-cli.js'
