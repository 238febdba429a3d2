import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import type { Duplex } from 'node:stream'
import { MqttClient } from 'mqtt'
import { isUnsupportedMqttClientError } from '../../src/index.js'
import { runSelfCheck, verifyDeferredAcks } from '../../src/routemq/deferred-ack-self-check.js'
import { TESTED_MQTT_RANGE } from '../../src/routemq/errors/unsupported-mqtt-client-error.js'

function client(stream: Duplex): MqttClient {
  return new MqttClient(() => stream, { protocolVersion: 5, keepalive: 0, reconnectPeriod: 0, clientId: 'self-check-test' })
}

describe('The check that the installed MQTT.js still defers acknowledgements', () => {
  it('passes with the installed mqtt, which package.json pins to the tested range', async () => {
    await verifyDeferredAcks()
    await runSelfCheck()
    // Read, not imported: an imported package.json would be compiled into dist/ and shadow the real one.
    const pinned = (JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }).dependencies.mqtt
    assert.equal(pinned, TESTED_MQTT_RANGE)
  })

  it('fails loudly when MQTT.js acknowledges a message before it was settled', async () => {
    // An MQTT.js that no longer calls an overridden handleMessage acknowledges at once.
    const ignoresOverride = (stream: Duplex): MqttClient => {
      const created = client(stream)
      const own = created.handleMessage.bind(created)
      Object.defineProperty(created, 'handleMessage', { get: () => own, set: () => undefined })
      return created
    }
    await assert.rejects(runSelfCheck(ignoresOverride), (error: Error) => isUnsupportedMqttClientError(error) && /acknowledged at once/.test(error.message) && error.message.includes(TESTED_MQTT_RANGE))
  })

  it('fails loudly when MQTT.js lost the hook that sends an acknowledgement later', async () => {
    const noSendPacket = (stream: Duplex): MqttClient => {
      const created = client(stream)
      Object.defineProperty(created, '_sendPacket', { value: undefined })
      return created
    }
    await assert.rejects(runSelfCheck(noSendPacket), isUnsupportedMqttClientError)
  })
})
