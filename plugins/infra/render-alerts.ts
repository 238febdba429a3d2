import type { InfraPlan } from './infra-plan.js'
import { requireMonitoring } from './monitoring-plan.js'
import { toYaml } from './yaml.js'

/** One Prometheus alerting rule. */
export interface AlertRule {
  readonly alert: string
  readonly expr: string
  /** How long the condition holds before the alert fires, e.g. `'2m'`. */
  readonly for: string
  readonly labels: { readonly severity: 'critical' | 'warning' }
  readonly annotations: { readonly summary: string; readonly description: string }
}

/**
 * Prometheus alert rules over the app's metrics (`prometheus-rules.yaml`, a
 * rule file for `rule_files:`): brokers down, one or all; the primary
 * unreachable; replicas behind the pool's `maxLagMs` (and `maxLagBytes`);
 * messages failing or dead-lettered; health gates holding or turning
 * messages away; spools filling; brokers dropping accepted messages. The
 * database rules are rendered only when `database` is configured. Each rule
 * carries a `severity` label and `summary` and `description` annotations.
 *
 * @example
 * renderAlertRules(planInfra({ mqtt: { brokers: ['mqtt://b1:1883'] }, database: { primary: 'postgres://app@db/app' } }))
 */
export function renderAlertRules(plan: InfraPlan): string {
  const rules = alertRules(plan)
  return `# Prometheus alert rules for ${plan.name}, rendered by routemq-load-balancing.\n` +
    toYaml({ groups: [{ name: `${plan.name}-load-balancing`, rules: rules.map((rule) => ({ ...rule })) }] })
}

/** The same rules as objects. */
export function alertRules(plan: InfraPlan): AlertRule[] {
  const { metricPrefix: p, database } = requireMonitoring(plan.monitoring, 'the alert rules')
  const rule = (
    alert: string, expr: string, duration: string, severity: AlertRule['labels']['severity'], summary: string, description: string,
  ): AlertRule => ({ alert, expr, for: duration, labels: { severity }, annotations: { summary, description } })
  const rules: AlertRule[] = [
    rule('RouteMQBrokerDown', `${p}pool_backend_up{pool="mqtt"} == 0`, '1m', 'warning',
      'Broker {{ $labels.backend }} is down for {{ $labels.instance }}',
      'The broker pool of {{ $labels.instance }} has had broker {{ $labels.backend }} out for a minute; its subscriptions moved to the other brokers. Check the broker and the network between them.'),
    rule('RouteMQAllBrokersDown', `max by (instance) (${p}pool_backend_up{pool="mqtt"}) == 0`, '30s', 'critical',
      '{{ $labels.instance }} reaches no broker',
      'Every broker of {{ $labels.instance }} is down: it receives nothing and buffers its publishes (see offline_buffer_messages) until one is back.'),
    rule('RouteMQBrokerDroppingMessages', `increase(${p}pool_backend_dropped_messages_total[5m]) > 0`, '0m', 'critical',
      'Broker {{ $labels.backend }} dropped messages it had accepted',
      'Broker {{ $labels.backend }} reports {{ $value }} messages dropped in 5 minutes (a client queue or in-flight limit reached): raise its max_queued_messages or find the slow subscriber.'),
  ]
  if (database) {
    rules.push(
      rule('RouteMQPrimaryUnreachable', `${p}health_check_up{check="primary"} == 0`, '30s', 'critical',
        '{{ $labels.instance }} cannot reach the database primary',
        'Writes fail or wait in health gates while the primary check of {{ $labels.instance }} fails. Check the primary and its failover.'),
      rule('RouteMQDatabaseServerDown', `${p}pool_backend_up{pool="postgres"} == 0`, '2m', 'warning',
        'Database server {{ $labels.backend }} takes no queries from {{ $labels.instance }}',
        'Server {{ $labels.backend }} has been down, or a replica too far behind, for 2 minutes; reads go to the others.'),
      rule('RouteMQReplicaLagHigh', `${p}replica_lag_seconds > ${database.maxLagSeconds}`, '2m', 'warning',
        'Replica {{ $labels.backend }} is {{ $value }} s behind the primary',
        `Replica {{ $labels.backend }} is beyond the pool's maxLagMs (${database.maxLagSeconds} s), so it gets no reads. Check its replay and the network from the primary.`),
    )
    if (database.maxLagBytes !== undefined) {
      rules.push(rule('RouteMQReplicaLagBytesHigh', `${p}replica_lag_bytes > ${database.maxLagBytes}`, '2m', 'warning',
        'Replica {{ $labels.backend }} is {{ $value }} bytes of WAL behind the primary',
        `Replica {{ $labels.backend }} is beyond the pool's maxLagBytes (${database.maxLagBytes}), so it gets no reads.`))
    }
  }
  rules.push(
    rule('RouteMQMessagesFailing',
      `sum by (instance) (rate(${p}messages_total{outcome=~"failed|malformed"}[5m])) / sum by (instance) (rate(${p}messages_received_total[5m])) > 0.05`,
      '5m', 'warning',
      'More than 5 % of the messages {{ $labels.instance }} receives fail',
      "{{ $value | humanizePercentage }} of the messages failed in their handler or were malformed over 5 minutes; see the app's ERROR logs for the routes."),
    rule('RouteMQMessagesDeadLettered', `increase(${p}error_policy_messages_total{action=~"dead_lettered|dead_letter_refused"}[10m]) > 0`, '0m', 'warning',
      '{{ $labels.instance }} dead-lettered messages',
      '{{ $value }} messages failed and went to a dead-letter topic ({{ $labels.action }}) in 10 minutes; dead_letter_refused ones were acknowledged without one, and are only in the logs.'),
    rule('RouteMQMessagesWithheld', `increase(${p}error_policy_messages_total{action="withheld"}[10m]) > 0`, '0m', 'warning',
      '{{ $labels.instance }} left failed messages unacknowledged',
      "{{ $value }} messages failed and were left unacknowledged in 10 minutes (onError 'redeliver', or a class the container cannot build under a persistent session): each holds one of the broker's in-flight slots until the session resumes; see the app's ERROR logs."),
    rule('RouteMQGateHolding', `${p}held_messages > 0`, '5m', 'warning',
      'Health gate {{ $labels.gate }} of {{ $labels.instance }} has held messages for 5 minutes',
      'The gate holds {{ $value }} messages until {{ $labels.gate }} is healthy again; past its maxHoldMs or maxHeld it turns them away.'),
    rule('RouteMQGateRejecting', `sum by (instance, gate, reason) (increase(${p}gate_rejections_total[5m])) > 0`, '0m', 'warning',
      'Health gate {{ $labels.gate }} of {{ $labels.instance }} turned messages away ({{ $labels.reason }})',
      '{{ $value }} messages were turned away in 5 minutes because {{ $labels.gate }} stayed down ({{ $labels.reason }}); they went to the route error policy.'),
    rule('RouteMQSpoolFilling', `${p}spool_bytes / ${p}spool_max_bytes > 0.8`, '5m', 'warning',
      'The spool of gate {{ $labels.gate }} is {{ $value | humanizePercentage }} full',
      'Messages held while {{ $labels.gate }} is down fill the spool on disk; when it is full new ones wait unacknowledged at the broker or are turned away.'),
    rule('RouteMQSpoolFull', `${p}spool_waiting_for_room > 0`, '1m', 'critical',
      'The spool of gate {{ $labels.gate }} is full',
      '{{ $value }} messages wait unacknowledged for room in the spool of {{ $labels.gate }}: bring the dependency back or give the spool more maxBytes.'),
    rule('RouteMQHealthScoreLow', `${p}health_score < 0.5`, '5m', 'warning',
      'Health score of {{ $labels.instance }} is {{ $value }}',
      'Over the last minute, pool requests failed, were slow or failed over often enough to bring the score (0 to 1) under 0.5.'),
  )
  return rules
}
