import assert from 'node:assert/strict'
import { ControlTopics, parsePresence, presence } from '../../plugins/mqtt/control-topics.js'

describe("the broker pool's control topics", () => {
  const topics = new ControlTopics('routemq/control', 'fleet')

  it('names sessions by a base64url level, so any client id fits a topic every broker takes (NATS refuses ".")', () => {
    const id = 'routemq-host.example.com-4242/x y'
    const topic = topics.member(id)
    assert.match(topic, /^routemq\/control\/fleet\/members\/[A-Za-z0-9_-]+$/)
    assert.equal(topics.memberOf(topic), id)
    assert.equal(topics.barrierOf(topics.barrier(id)), id)
    assert.equal(topics.memberOf(topics.barrier(id)), undefined)
    assert.equal(topics.memberOf('routemq/control/fleet/members/not.base64'), undefined)
    assert.equal(topics.memberOf('routemq/control/other/members/YQ'), undefined, 'another group')
  })

  it('owns only its own group', () => {
    assert.equal(topics.owns('routemq/control/fleet/canary/x'), true)
    assert.equal(topics.owns('routemq/control/fleet2/members/YQ'), false)
    assert.equal(topics.owns('devices/1/telemetry'), false)
  })

  it('reads presence defensively', () => {
    assert.equal(parsePresence(Buffer.from(presence('orphaned'))), 'orphaned')
    assert.equal(parsePresence(Buffer.alloc(0)), undefined, 'a cleared retained message')
    assert.equal(parsePresence(Buffer.from('{"state":"admin"}')), undefined)
    assert.equal(parsePresence(Buffer.from('not json')), undefined)
    assert.equal(parsePresence(Buffer.from('null')), undefined)
    assert.equal(parsePresence(Buffer.from(JSON.stringify({ state: 'left', pad: 'x'.repeat(5000) }))), undefined, 'oversized')
  })
})
