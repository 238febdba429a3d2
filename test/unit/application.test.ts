import assert from 'node:assert/strict'
import { Application, InvalidOptionError, Router } from '../../src/index.js'

describe('Application options', () => {
  const router = new Router().on('a', () => {})
  const cases: [string, Record<string, unknown>, string][] = [
    ['no router', { mqtt: { url: 'mqtt://x' } }, 'router'],
    ['no transport at all', { router }, 'mqtt'],
    ['url without a scheme', { router, mqtt: { url: 'broker:1883' } }, 'mqtt.url'],
    ['unsupported scheme', { router, mqtt: { url: 'http://broker' } }, 'mqtt.url'],
    ['a password with an unescaped "/", read as host "u", port 12', { router, mqtt: { url: 'mqtt://u:12/pw@broker:1883' } }, 'mqtt.url'],
    ['persistent session without client id', { router, mqtt: { url: 'mqtt://b', clean: false } }, 'mqtt.clientId'],
    ['protocol version 3', { router, mqtt: { url: 'mqtt://b', protocolVersion: 3 } }, 'mqtt.protocolVersion'],
    ['negative keepalive', { router, mqtt: { url: 'mqtt://b', keepaliveSeconds: -1 } }, 'mqtt.keepaliveSeconds'],
    ['bad ack order', { router, mqtt: { url: 'mqtt://b', ackOrder: 'random' } }, 'mqtt.ackOrder'],
    ['zero maxInFlight', { router, mqtt: { url: 'mqtt://b' }, maxInFlight: 0 }, 'maxInFlight'],
    ['unknown ordering', { router, mqtt: { url: 'mqtt://b' }, ordering: 'fifo' }, 'ordering'],
    ['unknown error policy', { router, mqtt: { url: 'mqtt://b' }, onError: 'retry' }, 'onError'],
    ['empty dead-letter topic', { router, mqtt: { url: 'mqtt://b' }, onError: { deadLetter: '' } }, 'onError'],
    ['module without register', { router, modules: [{ start() {} }] }, 'modules[0]'],
  ]
  for (const [name, options, field] of cases) {
    it(`rejects ${name}, naming "${field}"`, () => {
      assert.throws(
        () => Application.create(options as never),
        (e: unknown) => e instanceof InvalidOptionError && e.field === field && e.message.includes(`"${field}"`),
      )
    })
  }

  it('never echoes a password from the broker URL in an error', () => {
    assert.throws(() => Application.create({ router, mqtt: { url: 'http://user:s3cret@broker' } }), (e: unknown) =>
      e instanceof Error && !e.message.includes('s3cret'))
  })
})
