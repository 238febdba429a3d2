import assert from 'node:assert/strict'
import { chooseMode } from '../../plugins/mqtt/topology-mode.js'
import type { TopologyReport, TopologyVerdict } from '../../plugins/mqtt/topology-check.js'

function report(verdict: TopologyVerdict, reason?: string): TopologyReport {
  return { verdict, reachable: ['a', 'b'], sees: new Map(), sharedSubscriptions: new Set(['a', 'b']), reason }
}

describe('choosing the broker pool mode from the topology check', () => {
  it("'auto' runs failover on a cluster and all mode on anything else, never losing messages", () => {
    assert.deepEqual(chooseMode('auto', report('cluster')), { mode: 'failover' })
    assert.deepEqual(chooseMode('auto', report('independent')), { mode: 'all' })
    assert.equal(chooseMode('auto', report('partial')).mode, 'all')
    assert.match(chooseMode('auto', report('partial')).warning!, /bridged or partly clustered/)
    const unknown = chooseMode('auto', report('unknown', 'only a answered'))
    assert.equal(unknown.mode, 'all')
    assert.match(unknown.warning!, /only a answered.*all mode, which loses nothing/)
  })

  it("refuses 'failover' over brokers that do not share messages, saying what to set", () => {
    for (const verdict of ['independent', 'partial'] as const) {
      const choice = chooseMode('failover', report(verdict))
      assert.match(choice.error!, /mode 'failover' needs brokers that share messages/)
      assert.match(choice.error!, /mode: 'all' \(or 'auto'\)/)
    }
    assert.deepEqual(chooseMode('failover', report('cluster')), { mode: 'failover' })
    assert.match(chooseMode('failover', report('unknown', 'x refused a canary')).warning!, /could not check.*x refused a canary/)
  })

  it("keeps 'all' everywhere, warning of duplicates on a cluster", () => {
    assert.deepEqual(chooseMode('all', report('independent')), { mode: 'all' })
    assert.match(chooseMode('all', report('cluster')).warning!, /once per broker/)
  })
})
