import { InvalidOptionError } from '../routemq/plugin-api.js'
import { nonEmptyString, oneOf, required, shapeOf, wholeNumber, type OptionShape } from '../routemq/plugin-api.js'
import { MAX_TIMER_MS } from '../routemq/plugin-api.js'
import type { HealthGateOptions } from './health-gate.js'
import { HealthMonitor } from './health-monitor.js'
import type { SpoolOptions } from './spool/gate-spool.js'

/** The keys and types of `SpoolOptions`. */
export const SPOOL_OPTIONS_SHAPE: OptionShape<SpoolOptions> = {
  path: required(nonEmptyString, "the spool's directory, one per app instance, e.g. '/var/lib/app/spool'"),
  maxBytes: wholeNumber(1024),
  whenFull: oneOf(['wait', 'reject']),
}

/** The keys and types of `HealthGateOptions`. */
export const HEALTH_GATE_OPTIONS_SHAPE: OptionShape<HealthGateOptions> = {
  mode: oneOf(['hold', 'reject']),
  maxHeld: wholeNumber(1),
  maxHoldMs: (value, field) => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS)) {
      throw new InvalidOptionError(field, `must be a number of milliseconds above 0 and at most ${MAX_TIMER_MS}`)
    }
  },
  monitor: (value, field) => {
    if (value !== undefined && !(value instanceof HealthMonitor)) throw new InvalidOptionError(field, 'must be a HealthMonitor, or left out for the one HealthModule attaches')
  },
  spool: shapeOf(SPOOL_OPTIONS_SHAPE),
}
