import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api'
import { tracer } from '../../src/tracer.js'
import type { PgBackend } from './pg-backend.js'

/**
 * Primary failovers and outages as spans, drawn after the fact from the
 * probe rounds with their real start and end: they happen on the probes'
 * timer, outside any message, so there is no span to hang an event on, and a
 * span shows how long writes had no primary. `postgresql primary failover`
 * when another candidate took over, `postgresql primary outage` when the same
 * server came back; a probe or two missed without the primary falling is
 * neither. Each is the root of its own trace. Without a registered SDK
 * nothing is recorded.
 *
 * @example
 * const tracing = new PrimaryTracing()
 * tracing.note(current, healthy, confirmed) // after each probe round
 */
export class PrimaryTracing {
  /** The primary last confirmed taking writes. */
  #last: PgBackend | undefined
  #episode: { readonly since: number; readonly from: PgBackend; fell: boolean } | undefined

  /**
   * After a probe round: the candidate now current, whether it is healthy,
   * and whether this round found it taking writes.
   */
  note(current: PgBackend | undefined, healthy: boolean, confirmed: boolean): void {
    const now = Date.now()
    if (!confirmed || !healthy) {
      if (!this.#episode && this.#last) this.#episode = { since: now, from: this.#last, fell: false }
      if (this.#episode && !healthy) this.#episode.fell = true
      return
    }
    const episode = this.#episode
    const from = episode?.from ?? this.#last
    this.#episode = undefined
    this.#last = current
    if (!from || !current || (from === current && !episode?.fell)) return
    const attributes = {
      'db.system.name': 'postgresql',
      'routemq.failover.from': from.label,
      'routemq.failover.to': current.label,
      'routemq.outage_ms': now - (episode?.since ?? now),
    }
    const name = from === current ? 'postgresql primary outage' : 'postgresql primary failover'
    tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: episode?.since ?? now, attributes }, ROOT_CONTEXT).end(now)
  }
}
