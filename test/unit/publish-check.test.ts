import assert from 'node:assert/strict'
import { Application, BrokerPool, isInvalidOptionError, isInvalidTopicError, Router, silentLogger, validateLoadBalancingOptions } from '../../src/index.js'
import { assertPublishable } from '../../src/routemq/publish-check.js'
import { quoted } from '../../src/routemq/mqtt-text.js'

describe('What a publish may carry, checked before a broker sees it', () => {
  const refused: [string, unknown, unknown, string][] = [
    ['a NUL in a user property', 'x', { qos: 1, properties: { userProperties: { fw: '1.0\u0000' } } }, 'publish.properties.userProperties.fw'],
    ['a control character in a user property name', 'x', { properties: { userProperties: { 'f\u0001w': '1' } } }, 'publish.properties.userProperties.f\u0001w'],
    ['a non-character in a listed user property', 'x', { properties: { userProperties: { fw: ['1', '2\uFFFF'] } } }, 'publish.properties.userProperties.fw[1]'],
    ['a NUL in the content type', 'x', { properties: { contentType: 'text/plain\u0000' } }, 'publish.properties.contentType'],
    ['a wildcard in the response topic', 'x', { properties: { responseTopic: 'replies/#' } }, 'publish.properties.responseTopic'],
    ['QoS 3', 'x', { qos: 3 }, 'publish.qos'],
    ['QoS as a string', 'x', { qos: '1' }, 'publish.qos'],
    ['QoS NaN', 'x', { qos: Number.NaN }, 'publish.qos'],
    ['retain as a string', 'x', { retain: 'no' }, 'publish.retain'],
    ['a misspelt option', 'x', { qo: 1 }, 'publish.qo'],
    ['a misspelt property', 'x', { properties: { contenType: 'a' } }, 'publish.properties.contenType'],
    ['options as a list', 'x', [1], 'publish'],
    ['a number as payload', 5, {}, 'publish.payload'],
    ['an object as payload', {}, {}, 'publish.payload'],
    ['null as payload', null, {}, 'publish.payload'],
  ]
  for (const [what, payload, options, field] of refused) {
    it(`refuses ${what}, naming ${field}`, () => {
      assert.throws(() => assertPublishable('devices/7/cmd', payload, options), (error: unknown) => isInvalidOptionError(error) && error.field === field)
    })
  }

  it('takes what MQTT allows', () => {
    assertPublishable('devices/7/cmd', 'x', undefined)
    assertPublishable('devices/7/cmd', Buffer.from('x'), { qos: 2, retain: true, via: 'b1', properties: { userProperties: { fw: ['1', '\u00E9'] }, contentType: 'application/json', responseTopic: 'r/7', correlationData: Buffer.from([0]), payloadFormatIndicator: true, messageExpiryInterval: 60 } })
    assertPublishable('devices/7/cmd', new Uint8Array([1, 2]), {})
    assert.throws(() => assertPublishable('devices/\u0000', 'x', {}), isInvalidTopicError)
  })

  it('refuses a publish on the transports before they send it, as a rejected promise', async () => {
    const pool = new BrokerPool({ brokers: ['mqtt://127.0.0.1:1'], logger: silentLogger })
    await assert.rejects(pool.publish('t', 'x', { qos: 1, properties: { userProperties: { fw: '\u0000' } } }), isInvalidOptionError)
    await pool.close()
  })

  it('quotes text for messages with every line-breaking character escaped', () => {
    for (const text of ['a\nb', 'a\u0085b', 'a\u2028b', 'a\u2029b', 'a\u007Fb', 'a\u009Fb', 'a\rb']) {
      const quotedText = quoted(text)
      assert.ok(!/[\n\r\u0085\u2028\u2029\u007F-\u009F]/.test(quotedText), quotedText)
      assert.equal(JSON.parse(quotedText), text, 'still JSON, read back as written')
    }
    assert.throws(() => assertPublishable(`a\u0085${'b'.repeat(10)}`, 'x', {}), (error: Error) => !/[\u0085]/.test(error.message))
    assert.throws(() => new Router().on(`a/${'\u2028'.repeat(65_535)}`, () => undefined), (error: Error) => !/[\u2028]/.test(error.message))
  })
})

describe('Client ids, user names, passwords and timers MQTT and Node can carry', () => {
  const url = 'mqtt://127.0.0.1:1883'
  const cases: [string, Record<string, unknown>, string][] = [
    ['a client id over 1024 bytes', { clientId: 'x'.repeat(70_000) }, 'mqtt.clientId'],
    ['a client id with a NUL', { clientId: 'a\u0000b' }, 'mqtt.clientId'],
    ['a client id with an unpaired surrogate', { clientId: 'a\uD800' }, 'mqtt.clientId'],
    ['a user name over 65 535 bytes', { brokers: [{ url, username: 'x'.repeat(70_000) }] }, 'mqtt.brokers[0].username'],
    ['a password over 65 535 bytes', { brokers: [{ url, password: 'x'.repeat(70_000) }] }, 'mqtt.brokers[0].password'],
    ['a connect timeout no timer can wait', { connectTimeoutMs: 1e12 }, 'mqtt.connectTimeoutMs'],
  ]
  for (const [what, mqtt, field] of cases) {
    it(`refuses ${what} in the broker pool`, () => {
      assert.throws(() => validateLoadBalancingOptions({ mqtt: { brokers: [url], ...mqtt } }), (error: unknown) => isInvalidOptionError(error) && error.field === field)
    })
  }

  const appCases: [string, Record<string, unknown>, string][] = [
    ['a client id of 80 000 bytes in 40 000 characters', { mqtt: { url, clientId: '\u00E9'.repeat(40_000) } }, 'mqtt.clientId'],
    ['a client id with a NUL', { mqtt: { url, clientId: 'a\u0000b' } }, 'mqtt.clientId'],
    ['a drain timeout no timer can wait', { mqtt: { url }, drainTimeoutMs: 1e12 }, 'drainTimeoutMs'],
    ['a reconnect period no timer can wait', { mqtt: { url, reconnectPeriodMs: 2 ** 31 } }, 'mqtt.reconnectPeriodMs'],
  ]
  for (const [what, options, field] of appCases) {
    it(`refuses ${what} in the application`, () => {
      assert.throws(() => Application.create({ router: new Router(), logger: silentLogger, ...options }), (error: unknown) => isInvalidOptionError(error) && error.field === field)
    })
  }
})
