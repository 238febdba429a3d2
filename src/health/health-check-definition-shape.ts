import { InvalidOptionError } from '../routemq/plugin-api.js'
import { isBoolean, isFunction, matching, nonEmptyString, required, wholeNumber, type OptionCheck, type OptionShape } from '../routemq/plugin-api.js'
import { MAX_TIMER_MS } from '../routemq/plugin-api.js'
import type { HealthCheckDefinition } from './health-check.js'

/** What a check's name may hold: it is a key of `/health`'s `checks` and a metrics label. */
export const CHECK_NAME = /^[\w.:/[\]-]+$/

const intervalMs: OptionCheck = (value, field) => {
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS)) {
    throw new InvalidOptionError(field, `must be a number of milliseconds above 0 and at most ${MAX_TIMER_MS}`)
  }
}

/** The keys and types of `HealthCheckDefinition`. */
export const HEALTH_CHECK_DEFINITION_SHAPE: OptionShape<HealthCheckDefinition> = {
  name: required(matching(CHECK_NAME, 'a check name of letters, digits and . _ - / : [ ]'), 'name the check, e.g. "cache"'),
  check: required(isFunction('a function (signal) => void | Promise<void>'), 'give the check, a function (signal) => void | Promise<void>'),
  intervalMs,
  timeoutMs: intervalMs,
  rise: wholeNumber(1),
  fall: wholeNumber(1),
  critical: isBoolean,
  componentType: nonEmptyString,
  isOutage: isFunction('a function (error) => boolean'),
  watch: isFunction('a function (recheck) => disposer'),
}
