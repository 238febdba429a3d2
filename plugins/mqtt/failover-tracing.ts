import { ROOT_CONTEXT, SpanKind, type Attributes } from '@opentelemetry/api'
import { tracer } from '../../src/tracer.js'
import type { FailoverEvent } from './failover-supervisor.js'

/**
 * Failovers and outages of a broker pool as spans of their own, drawn after
 * the fact from the pool's events with their real start and end: they happen
 * on timers and socket events, outside any message, so there is no span to
 * hang an event on, and a span shows the gap on a trace timeline. Each is the
 * root of its own trace. Without a registered SDK nothing is recorded.
 *
 * @example
 * pool.onFailover((event) => trace.failover(event))
 */
export class BrokerPoolTracing {
  /** Brokers down, and since when (epoch ms). */
  readonly #down = new Map<string, number>()

  /** `mqtt broker failover`: from noticing the lost connection to the new one taking publishes. */
  failover(event: FailoverEvent): void {
    const end = Date.now()
    const attributes: Attributes = {
      'messaging.system': 'mqtt',
      'routemq.failover.to': event.to,
      'routemq.failover.gap_ms': event.gapMs,
      'routemq.failover.replaying': event.replaying,
    }
    if (event.from !== undefined) attributes['routemq.failover.from'] = event.from
    tracer.startSpan('mqtt broker failover', { kind: SpanKind.INTERNAL, startTime: end - event.gapMs, attributes }, ROOT_CONTEXT).end(end)
  }

  /** A broker was found down; its outage span is drawn once it is up again. */
  down(broker: string): void {
    if (!this.#down.has(broker)) this.#down.set(broker, Date.now())
  }

  /** `mqtt broker outage`: from the broker found down to found up again. */
  up(broker: string): void {
    const since = this.#down.get(broker)
    if (since === undefined) return
    this.#down.delete(broker)
    const end = Date.now()
    const attributes = { 'messaging.system': 'mqtt', 'routemq.broker': broker, 'routemq.outage_ms': end - since }
    tracer.startSpan('mqtt broker outage', { kind: SpanKind.INTERNAL, startTime: since, attributes }, ROOT_CONTEXT).end(end)
  }
}
