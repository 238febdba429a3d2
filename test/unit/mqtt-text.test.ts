import assert from 'node:assert/strict'
import { Application, isInvalidOptionError, isInvalidRouteError, isInvalidTopicError, Router, silentLogger } from '../../src/index.js'
import { mqttTextProblem } from '../../src/routemq/mqtt-text.js'
import { assertPublishTopic, publishTopicProblem } from '../../src/routemq/publish-topic.js'

describe("MQTT's UTF-8 rules for topics", () => {
  const refused: [string, string][] = [
    ['a\u0000b', 'the NUL character'],
    ['a\u0001b', 'a control character'],
    ['a\nb', 'a control character'],
    ['a\u001Fb', 'a control character'],
    ['a\u007Fb', 'a control character'],
    ['a\u0085b', 'a control character'],
    ['a\u009Fb', 'a control character'],
    ['a\uD800b', 'an unpaired surrogate'],
    ['a\uDFFFb', 'an unpaired surrogate'],
    ['a\uFDD0b', 'a Unicode non-character'],
    ['a\uFDEFb', 'a Unicode non-character'],
    ['a\uFFFEb', 'a Unicode non-character'],
    ['a\uFFFFb', 'a Unicode non-character'],
    ['a\u{1FFFE}b', 'a Unicode non-character'],
    ['a\u{10FFFF}b', 'a Unicode non-character'],
  ]
  for (const [topic, kind] of refused) {
    it(`refuses ${JSON.stringify(topic)} as ${kind}, naming the character and its place`, () => {
      const problem = mqttTextProblem(topic)
      assert.ok(problem?.includes(kind), problem)
      assert.match(problem!, /at character 2 /)
      assert.ok(publishTopicProblem(topic))
      assert.throws(() => assertPublishTopic(topic), isInvalidTopicError)
    })
  }

  const accepted = ['devices/7/telemetry', 'caf\u00E9/\u00A0/\u00A1', '\u65E5\u672C/\u6E29\u5EA6', 'emoji/\u{1F600}', 'a\uFDCFb', 'a\uFDF0b', 'a\uFFFDb', 'a\u{1FFFD}b', ' spaced / levels ']
  for (const topic of accepted) {
    it(`accepts ${JSON.stringify(topic)}`, () => {
      assert.equal(mqttTextProblem(topic), undefined)
      assert.equal(publishTopicProblem(topic), undefined)
    })
  }

  it('quotes the topic in the error message so that a newline cannot forge a log line', () => {
    assert.throws(() => assertPublishTopic('a\nINFO forged'), (error: Error) => !error.message.includes('\n'))
  })

  it('refuses route patterns, shared group names and dead-letter prefixes that break the rules', () => {
    assert.throws(() => new Router().on('a/\u0001/{id}', () => undefined), isInvalidRouteError)
    assert.throws(() => new Router().on('a/{id}', () => undefined, { shared: 'g\uFFFF' }), isInvalidRouteError)
    assert.throws(() => new Router({ sharedGroup: 'g\u007F' }), isInvalidRouteError)
    assert.throws(() => new Router().on('a/{id}', () => undefined, { onError: { deadLetter: 'dl/\u0001' } }), isInvalidRouteError)
    assert.throws(() => new Router().on('a/{id}', () => undefined, { onError: { deadLetter: 'dl/+' } }), isInvalidRouteError)
    assert.throws(() => new Router().on(`a/${'x'.repeat(65_535)}`, () => undefined), isInvalidRouteError)
    assert.throws(
      () => Application.create({ router: new Router(), logger: silentLogger, mqtt: { url: 'mqtt://127.0.0.1:1883' }, onError: { deadLetter: 'dl\uFFFE' } }),
      isInvalidOptionError,
    )
  })
})
