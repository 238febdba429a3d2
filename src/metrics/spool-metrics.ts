import { Counter, Gauge, type Registry } from 'prom-client'
import type { MeasuredSpool } from './measured-health.js'

/** A gate as the spool metrics read it: a `HealthGate`. */
export interface MeasuredSpoolGate {
  readonly dependencies: readonly string[]
  readonly stats: { readonly spool: MeasuredSpool | undefined }
}

type SpoolFigure = (stats: MeasuredSpool) => number

const FIGURES: readonly { readonly kind: 'gauge' | 'counter'; readonly name: string; readonly help: string; readonly value: SpoolFigure }[] = [
  { kind: 'gauge', name: 'spool_messages', help: "Messages in a health gate's spool now (acknowledged to the broker, not yet handled).", value: (s) => s.messages },
  { kind: 'gauge', name: 'spool_bytes', help: "Bytes of the messages in a health gate's spool now.", value: (s) => s.bytes },
  { kind: 'gauge', name: 'spool_max_bytes', help: "A health gate's spool.maxBytes.", value: (s) => s.maxBytes },
  { kind: 'gauge', name: 'spool_oldest_age_seconds', help: "Age of the oldest message in a health gate's spool (0 when empty).", value: (s) => s.oldestAgeMs / 1000 },
  { kind: 'gauge', name: 'spool_waiting_for_room', help: 'Messages waiting unacknowledged for room in a full spool.', value: (s) => s.waitingForRoom },
  { kind: 'counter', name: 'spooled_messages_total', help: "Messages written to a health gate's spool.", value: (s) => s.spooledTotal },
  { kind: 'counter', name: 'spool_replayed_total', help: "Spooled messages handled by their route again (rate(): the replay rate).", value: (s) => s.replayedTotal },
  { kind: 'counter', name: 'spool_full_waits_total', help: 'Messages that had to wait for room in a full spool.', value: (s) => s.waitedForRoomTotal },
]

/**
 * The spool metrics, labelled by gate (its dependencies, `[n]` for a second
 * spooled gate of the same), read from the
 * gates at each scrape; gates without a spool have none.
 *
 * @example
 * registerSpoolMetrics('routemq_', [registry], gates)
 */
export function registerSpoolMetrics(prefix: string, registers: Registry[], gates: ReadonlySet<MeasuredSpoolGate>): void {
  for (const figure of FIGURES) {
    const Metric = figure.kind === 'gauge' ? Gauge : Counter
    new Metric({
      name: `${prefix}${figure.name}`, help: figure.help, labelNames: ['gate'], registers,
      collect() {
        this.reset()
        for (const gate of gates) {
          const stats = gate.stats.spool
          if (stats) this.inc({ gate: stats.label }, figure.value(stats))
        }
      },
    })
  }
}
