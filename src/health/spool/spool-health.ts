import type { HealthCheckSource } from '../health-check.js'
import type { HealthGate } from '../health-gate.js'

/** Share of `maxBytes` above which a spool's check fails (it is filling: the outage may outlast it). */
export const SPOOL_FILLING_SHARE = 0.8

/**
 * A non-critical check per spooled gate, `spool:<label>` (its dependencies,
 * `/`-separated, and `[n]` for a second gate of the same): it passes
 * with how full the spool is, and fails (so `/ready` and `/health` say
 * `warn`, without taking the instance out) while the spool is over 80 % of
 * `maxBytes` or messages wait for room in it.
 *
 * @example
 * monitor.registerSource(spoolHealth(gate))
 */
export function spoolHealth(gate: HealthGate): HealthCheckSource {
  const name = spoolCheckName(gate.stats.spool!.label)
  return {
    healthChecks: () => [{
      name,
      critical: false,
      componentType: 'spool',
      intervalMs: 1000,
      rise: 1,
      fall: 1,
      check: () => {
        const stats = gate.stats.spool!
        const percent = Math.round((stats.bytes / stats.maxBytes) * 1000) / 10
        const held = `${stats.messages} messages, ${stats.bytes} of ${stats.maxBytes} bytes, oldest ${Math.round(stats.oldestAgeMs / 1000)} s`
        if (stats.writeError !== undefined) throw new Error(`the spool cannot write (${stats.writeError}): ${stats.writesFailing} messages wait unacknowledged (${held})`)
        if (stats.waitingForRoom > 0) throw new Error(`the spool is full: ${stats.waitingForRoom} messages wait unacknowledged at the broker (${held})`)
        if (stats.bytes > stats.maxBytes * SPOOL_FILLING_SHARE) throw new Error(`the spool is filling: ${percent} % (${held})`)
        return { observedValue: percent, observedUnit: '%' }
      },
    }],
  }
}

/** The check of the spool labelled `label`: `spool:` and the label, `/` for `,` (check names have no comma). */
export function spoolCheckName(label: string): string {
  return `spool:${label.replaceAll(',', '/')}`
}
