export { LoadBalancingModule, type LoadBalancingAsyncOptions } from './load-balancing-module.js'
export { validateLoadBalancingOptions, type LoadBalancingOptions, type DatabaseOptions, type HealthOptions } from './load-balancing-options.js'
export { loadBalancingOptionsFromEnv, infraOptionsFromEnv, loggerFromEnv, ENV_VARIABLES } from './env-options.js'
export { Repository, InjectKysely } from './repository.js'
