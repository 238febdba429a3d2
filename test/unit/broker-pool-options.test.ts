import assert from 'node:assert/strict'
import { InvalidOptionError } from '../../src/index.js'
import { resolveBrokerPoolOptions, type BrokerPoolOptions } from '../../plugins/mqtt/index.js'

describe('broker pool options', () => {
  it('fills in defaults and takes credentials out of the URL', () => {
    const resolved = resolveBrokerPoolOptions({ brokers: ['mqtt://dev:s3cret@b1:1883', { url: 'mqtts://b2', id: 'eu-1', region: 'eu' }] }, 'app-1')
    assert.equal(resolved.mode, 'auto')
    assert.equal(resolved.topologyCheck, true)
    assert.equal(resolved.clean, false, 'persistent sessions by default')
    assert.equal(resolved.receiveMaximum, 4096)
    assert.deepEqual(resolved.sessions, { adoptOrphans: true, orphanAfterSeconds: 15 })
    assert.equal(resolved.group, 'routemq')
    assert.equal(resolved.strategy, 'least-latency')
    assert.equal(resolved.clientId, 'app-1')
    assert.equal(resolved.health.probeIntervalMs, 750)
    assert.equal(resolved.offlineBuffer.qos0, 'queue')
    const [b1, b2] = resolved.brokers
    assert.deepEqual([b1!.id, b1!.url, b1!.username, b1!.password], ['b1:1883', 'mqtt://b1:1883', 'dev', 's3cret'])
    assert.deepEqual([b2!.id, b2!.port, b2!.protocol, b2!.region], ['eu-1', 8883, 'mqtts', 'eu'])
  })

  it('reads credentials from named environment variables', () => {
    const resolved = resolveBrokerPoolOptions(
      { brokers: [{ url: 'mqtt://b1', usernameEnv: 'MQTT_USER', passwordEnv: 'MQTT_PASS' }], env: { MQTT_USER: 'svc', MQTT_PASS: 'pw' } },
      'x',
    )
    assert.equal(resolved.brokers[0]!.username, 'svc')
    assert.equal(resolved.brokers[0]!.password, 'pw')
  })

  const cases: [string, BrokerPoolOptions, string][] = [
    ['no brokers', { brokers: [] }, 'brokers'],
    ['a broker that is not a URL', { brokers: ['mqtt://ok', 'broker-2:1883'] }, 'brokers[1].url'],
    ['an http URL', { brokers: ['http://b1'] }, 'brokers[0].url'],
    ['two brokers with one id', { brokers: ['mqtt://a:1883', { url: 'mqtt://b', id: 'a:1883' }] }, 'brokers[1].id'],
    ['TLS on a plain URL', { brokers: [{ url: 'mqtt://b', tls: { ca: 'x' } }] }, 'brokers[0].tls'],
    ['a negative weight', { brokers: [{ url: 'mqtt://b', weight: -1 }] }, 'brokers[0].weight'],
    ['an unset password variable', { brokers: [{ url: 'mqtt://b', passwordEnv: 'NOPE' }], env: {} }, 'brokers[0].passwordEnv'],
    ['an unknown mode', { brokers: ['mqtt://b'], mode: 'cluster' as never }, 'mode'],
    ['an unknown strategy', { brokers: ['mqtt://b'], strategy: 'fastest' as never }, 'strategy'],
    ['a persistent session no one adopts, without client id', { brokers: ['mqtt://b'], sessions: { adoptOrphans: false } }, 'clientId'],
    ['no topology check without an explicit mode', { brokers: ['mqtt://a', 'mqtt://b'], topologyCheck: false }, 'topologyCheck'],
    ['a mistyped option', { brokers: ['mqtt://b'], offlineBufer: {} } as never, 'offlineBufer'],
    ['a mistyped health option', { brokers: ['mqtt://b'], health: { probeInterval: 5 } } as never, 'health.probeInterval'],
    ['clean as a string', { brokers: ['mqtt://b'], clean: 'false' } as never, 'clean'],
    ['a group with a dot, which NATS refuses in topics', { brokers: ['mqtt://b'], group: 'fleet.app' }, 'group'],
    ['a control topic with a wildcard', { brokers: ['mqtt://b'], controlTopic: 'ctl/#' }, 'controlTopic'],
    ['a receive maximum over 65535', { brokers: ['mqtt://b'], receiveMaximum: 70_000 }, 'receiveMaximum'],
    ['a zero orphan delay', { brokers: ['mqtt://b'], sessions: { orphanAfterSeconds: 0 } }, 'sessions.orphanAfterSeconds'],
    ['a session that expires before its adoption', { brokers: ['mqtt://b'], sessionExpirySeconds: 20 }, 'sessionExpirySeconds'],
    ['a keepalive over 65535 s', { brokers: ['mqtt://b'], keepaliveSeconds: 70_000 }, 'keepaliveSeconds'],
    ['a start timeout Node cannot wait for', { brokers: ['mqtt://b'], startTimeoutMs: 2 ** 31 }, 'startTimeoutMs'],
    ['a zero probe timeout', { brokers: ['mqtt://b'], health: { probeTimeoutMs: 0 } }, 'health.probeTimeoutMs'],
    ['a backoff cap under its base', { brokers: ['mqtt://b'], health: { backoffBaseMs: 500, backoffCapMs: 100 } }, 'health.backoffCapMs'],
    ['a fractional buffer size', { brokers: ['mqtt://b'], offlineBuffer: { maxMessages: 1.5 } }, 'offlineBuffer.maxMessages'],
    ['an unknown QoS 0 policy', { brokers: ['mqtt://b'], offlineBuffer: { qos0: 'keep' as never } }, 'offlineBuffer.qos0'],
    ['a broker id with a space, which failed at start under the check name', { brokers: [{ url: 'mqtt://b', id: 'broker 1' }] }, 'brokers[0].id'],
    ['a misspelt broker option', { brokers: [{ url: 'mqtt://b', wieght: 2 } as never] }, 'brokers[0].wieght'],
    ['a misspelt TLS option', { brokers: [{ url: 'mqtts://b', tls: { rejectUnauthorised: false } as never }] }, 'brokers[0].tls.rejectUnauthorised'],
    ['TLS verification as a string', { brokers: [{ url: 'mqtts://b', tls: { rejectUnauthorized: 'false' as never } }] }, 'brokers[0].tls.rejectUnauthorized'],
    ['a region that is a number', { brokers: ['mqtt://b'], region: 42 as never }, 'region'],
    ['a broker region that is a number', { brokers: [{ url: 'mqtt://b', region: 42 as never }] }, 'brokers[0].region'],
    ['a misspelt session option', { brokers: ['mqtt://b'], sessions: { orphanAfter: 5 } as never }, 'sessions.orphanAfter'],
    ['a logger without its methods', { brokers: ['mqtt://b'], logger: {} as never }, 'logger'],
  ]
  for (const [name, options, field] of cases) {
    it(`rejects ${name}, naming "${field}"`, () => {
      assert.throws(() => resolveBrokerPoolOptions(options, 'x'), (e: unknown) => e instanceof InvalidOptionError && e.field === field)
    })
  }

  it('suggests the option a typo was meant to be', () => {
    assert.throws(() => resolveBrokerPoolOptions({ brokers: ['mqtt://b'], offlineBufer: {} } as never, 'x'), /did you mean offlineBuffer\?/)
  })

  it('refuses a URL whose password has an unescaped "/", "?" or "#", saying to percent-encode it, without echoing it', () => {
    // Parsed as written, these connect to host "alice" on port 12 (or 5432) and lose the password.
    for (const url of ['mqtt://alice:12/hunter@b:1883', 'mqtts://alice:12?hunter@b', 'ws://alice:12#hunter@b/mqtt', 'wss://alice:8883/hunter@b/mqtt', 'mqtt://alice%3A12%2Fhunter%40b:1883']) {
      assert.throws(() => resolveBrokerPoolOptions({ brokers: ['mqtt://ok:1883', { url }] }, 'x'), (e: unknown) =>
        e instanceof InvalidOptionError && e.field === 'brokers[1].url' && /percent-encode/.test(e.message) &&
        !['alice', 'hunter', '12'].some((secret) => e.message.includes(secret)), url)
    }
    assert.equal(resolveBrokerPoolOptions({ brokers: ['mqtt://alice:12%2Fhunter@b:1883'] }, 'x').brokers[0]!.password, '12/hunter')
  })

  it('suggests the full path of a nested option a typo was meant to be', () => {
    assert.throws(() => resolveBrokerPoolOptions({ brokers: [{ url: 'mqtt://b', tls: { ca: 'x' }, wieght: 2 }] } as never, 'x'), /did you mean brokers\[0\]\.weight\?/)
    assert.throws(() => resolveBrokerPoolOptions({ brokers: ['mqtt://b'], offlineBuffer: { maxMessage: 1 } } as never, 'x'), /did you mean offlineBuffer\.maxMessages\?/)
  })

  it('never puts a password into an error', () => {
    assert.throws(() => resolveBrokerPoolOptions({ brokers: ['mqtt://u:hunter2@b', 'ftp://u:hunter2@c'] }, 'x'), (e: unknown) =>
      e instanceof InvalidOptionError && !e.message.includes('hunter2'))
  })
})
