// What the metrics read of the health side, as interfaces of their own: src/metrics and
// src/health never import each other's classes (the layer rules), and a HealthMonitor, a
// HealthGate and its spool satisfy these as they are.

/** A check as the metrics read it at each scrape. */
export interface MeasuredCheck {
  readonly name: string
  readonly critical: boolean
  /** `'healthy'` counts as up. */
  readonly state: string
  readonly latencyMs: number | undefined
}

/** Anything with health checks to report: a `HealthMonitor`. */
export interface MeasuredHealth {
  summary(): { readonly checks: readonly MeasuredCheck[] }
}

/** A health gate's spool figures: `HealthGate.stats.spool`. */
export interface MeasuredSpool {
  readonly label: string
  readonly messages: number
  readonly bytes: number
  readonly maxBytes: number
  readonly oldestAgeMs: number
  readonly waitingForRoom: number
  readonly spooledTotal: number
  readonly replayedTotal: number
  readonly waitedForRoomTotal: number
}

/** A health gate's counters: `HealthGate.stats`. */
export interface MeasuredGateStats {
  readonly held: number
  readonly heldTotal: number
  readonly rejected: Readonly<Record<string, number>>
  readonly spool: MeasuredSpool | undefined
}
