import { Counter, Gauge, type Registry } from 'prom-client'
import type { DispatchStats } from '../routemq/plugin-api.js'

/** An application as the message metrics read it. */
interface DispatchSource {
  readonly stats: DispatchStats
}

/** A health gate as the message metrics read it. */
interface HoldSource {
  readonly dependencies: readonly string[]
  readonly stats: { readonly held: number; readonly heldTotal: number; readonly rejected: Readonly<Record<string, number>> }
}

/**
 * How each inbound message ended. The outcomes exclude each other, so that
 * `sum(messages_total)` counts every settled message once: `received` is a
 * metric of its own, and what an error policy did after a failure is another.
 */
const OUTCOMES = ['handled', 'failed', 'malformed', 'unmatched', 'refused', 'dropped', 'duplicateCopies'] as const satisfies readonly (keyof DispatchStats)[]
/** What a route's error policy did with a failed or malformed message, when it did more than acknowledge it. */
const ERROR_POLICY_ACTIONS = ['deadLettered', 'deadLetterRefused', 'withheld'] as const satisfies readonly (keyof DispatchStats)[]

/**
 * The counters of inbound messages and of health gates' holds, read from the
 * applications and gates at each scrape.
 *
 * @example
 * registerMessageMetrics('routemq_', [registry], apps, gates)
 */
export function registerMessageMetrics(p: string, registers: Registry[], apps: ReadonlySet<DispatchSource>, gates: ReadonlySet<HoldSource>): void {
  /** A counter summed over every application's dispatch counters, one series per counter named. */
  const dispatchCounter = (name: string, help: string, label: string, counters: readonly (keyof DispatchStats)[]): void => {
    new Counter({
      name: `${p}${name}`, help, labelNames: [label], registers,
      collect() {
        this.reset()
        for (const app of apps) for (const counter of counters) this.inc({ [label]: snake(counter) }, app.stats[counter])
      },
    })
  }
  new Counter({
    name: `${p}messages_received_total`, help: 'Inbound messages the application received, whatever became of them.', registers,
    collect() {
      this.reset()
      for (const app of apps) this.inc(app.stats.received)
    },
  })
  dispatchCounter(
    'messages_total',
    'Inbound messages by how they ended; the outcomes exclude each other, so their sum plus messages_in_flight is messages_received_total (less messages abandoned by a stop).',
    'outcome', OUTCOMES,
  )
  dispatchCounter(
    'error_policy_messages_total',
    "Failed or malformed messages by what their route's error policy did beyond acknowledging them: dead_lettered, dead_letter_refused (acknowledged without it), withheld (redeliver).",
    'action', ERROR_POLICY_ACTIONS,
  )
  new Gauge({
    name: `${p}messages_in_flight`, help: 'Inbound messages accepted and not yet settled (running, waiting, or held by a gate).', registers,
    collect() {
      this.set([...apps].reduce((sum, app) => sum + app.stats.inFlight, 0))
    },
  })
  new Gauge({
    name: `${p}held_messages`, help: 'Messages a health gate holds now, waiting for its dependencies.', labelNames: ['gate'], registers,
    collect() {
      this.reset()
      for (const gate of gates) this.inc({ gate: gate.dependencies.join(',') }, gate.stats.held)
    },
  })
  // Not `held_messages_total`: OpenMetrics names a counter's family without `_total`, which would collide with the gauge.
  new Counter({
    name: `${p}gate_holds_total`, help: 'Messages a health gate had to hold (each counted once, however long it waited).', labelNames: ['gate'], registers,
    collect() {
      this.reset()
      for (const gate of gates) this.inc({ gate: gate.dependencies.join(',') }, gate.stats.heldTotal)
    },
  })
  new Counter({
    name: `${p}gate_rejections_total`, help: 'Messages a health gate turned away, by reason.', labelNames: ['gate', 'reason'], registers,
    collect() {
      this.reset()
      for (const gate of gates) {
        for (const [reason, count] of Object.entries(gate.stats.rejected)) this.inc({ gate: gate.dependencies.join(','), reason }, count)
      }
    },
  })
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)
}
