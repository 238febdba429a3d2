import { InvalidOptionError } from '../routemq/plugin-api.js'
import { isBoolean, matching, type OptionShape } from '../routemq/plugin-api.js'
import type { LoadBalancingMetricsOptions } from './load-balancing-metrics.js'

/** The keys and types of `LoadBalancingMetricsOptions`. */
export const LOAD_BALANCING_METRICS_OPTIONS_SHAPE: OptionShape<LoadBalancingMetricsOptions> = {
  // By what it does, not by class: another copy of prom-client in node_modules has a Registry class of its own.
  registry: (value, field) => {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- a false positive: the rule reads `value`, narrowed from unknown to {}, as the asserted type, and tsc needs the assertion
    if (value !== undefined && typeof (value as { registerMetric?: unknown } | null)?.registerMetric !== 'function') {
      throw new InvalidOptionError(field, "must be a prom-client Registry: new Registry() from 'prom-client'")
    }
  },
  prefix: matching(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'a Prometheus name prefix such as routemq_'),
  defaultMetrics: isBoolean,
}
