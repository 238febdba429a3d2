import assert from 'node:assert/strict'
import { Registry, type OpenMetricsContentType } from 'prom-client'
import { LoadBalancingMetrics, type MeasuredApplication } from '../../src/index.js'
import { parsePrometheusText } from '../support/prometheus-text.js'

describe('metric names', () => {
  it('give every family its own name under OpenMetrics, where a counter is named without _total', async () => {
    const registry = new Registry<OpenMetricsContentType>()
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    new LoadBalancingMetrics({ registry: registry as unknown as Registry })
    const types = [...(await registry.metrics()).matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => `${match[1]} ${match[2]}`)
    assert.ok(types.length > 20, `${types.length} families`)
    const seen = new Map<string, string>()
    const collisions = types.flatMap((entry) => {
      const [name] = entry.split(' ')
      const other = seen.get(name!)
      seen.set(name!, entry)
      return other ? [`${other} / ${entry}`] : []
    })
    assert.deepEqual(collisions, [])
  })

  it('count each settled message in one outcome of messages_total, received and error-policy actions apart', async () => {
    const app: MeasuredApplication = {
      stats: {
        received: 12, handled: 5, failed: 3, malformed: 1, unmatched: 1, refused: 0, dropped: 1, duplicateCopies: 0,
        deadLettered: 2, deadLetterRefused: 0, withheld: 1, inFlight: 1,
      },
    }
    const metrics = new LoadBalancingMetrics({ defaultMetrics: false })
    metrics.observeApplication(app)
    const families = parsePrometheusText(await metrics.text())
    const sum = (name: string) => families.get(name)!.samples.reduce((total, sample) => total + sample.value, 0)
    assert.equal(sum('routemq_messages_total') + sum('routemq_messages_in_flight'), sum('routemq_messages_received_total'))
    assert.deepEqual(new Set(families.get('routemq_messages_total')!.samples.map((s) => s.labels.outcome)),
      new Set(['handled', 'failed', 'malformed', 'unmatched', 'refused', 'dropped', 'duplicate_copies']))
    assert.deepEqual(Object.fromEntries(families.get('routemq_error_policy_messages_total')!.samples.map((s) => [s.labels.action, s.value])),
      { dead_lettered: 2, dead_letter_refused: 0, withheld: 1 })
  })
})
