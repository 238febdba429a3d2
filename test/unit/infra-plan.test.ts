import assert from 'node:assert/strict'
import { InvalidOptionError } from '../../src/index.js'
import { mqttConnectPacket, renderHaproxy, renderKubernetes, renderKubernetesObjects, renderNginx, toYaml } from '../../plugins/infra/index.js'
import { planInfra } from '../../src/composition/index.js'
import { mqtt5PublishPacket } from '../../plugins/infra/mqtt-connect-packet.js'
import { resolveBrokerPoolOptions } from '../../plugins/mqtt/broker-pool-options.js'
import { isHostName } from '../../src/host-name.js'
import { withFieldPrefix } from '../../src/routemq/errors/invalid-option-error.js'
import { MAX_TIMER_MS } from '../../src/routemq/timer-limit.js'
import { parseYamlDocuments } from '../support/yaml-subset.js'

describe('balancer plans', () => {
  it('builds an MQTT 3.1.1 CONNECT as the spec lays it out', () => {
    // 0x10, remaining length 25; "MQTT", level 4, clean session, keepalive 10; client id.
    assert.equal(mqttConnectPacket('haproxy-check', 10).toString('hex'), '101900044d5154540402000a000d686170726f78792d636865636b')
    assert.throws(() => mqttConnectPacket('x'.repeat(24), 10), /23 bytes/)
  })

  it("admits a returning broker only after the app's probes and connect had time to subscribe there", () => {
    const plan = planInfra({ mqtt: { brokers: ['mqtt://b1:1883', 'mqtt://b2:1883'] } })
    // Down brokers are probed every 1.2 × 750 ms at most, then connected within 2000 ms.
    assert.equal(plan.appReadyMs, 2900)
    assert.equal(plan.check.rise, 3)
    assert.ok((plan.check.rise - 1) * plan.check.intervalMs >= plan.appReadyMs)
    assert.deepEqual(plan.warnings, [])
    const config = renderHaproxy(plan)
    assert.match(config, /rise 3/)
    assert.match(config, /option redispatch/)
    const slower = planInfra({ mqtt: { brokers: ['mqtt://b1:1883'], health: { probeIntervalMs: 5000 } }, infra: { check: { intervalMs: 1000 } } })
    assert.equal(slower.check.rise, 10, 'a slower pool needs more checks before devices are let in')
    const risky = planInfra({ mqtt: { brokers: ['mqtt://b1:1883'] }, infra: { check: { intervalMs: 500, rise: 1 } } })
    assert.equal(risky.check.rise, 1, 'an explicit rise is kept')
    assert.match(risky.warnings.join(), /before the app may have subscribed/)
    assert.match(renderHaproxy(risky), /# WARNING: infra\.check\.rise 1/)
  })

  it('builds the MQTT 5 CONNECT and QoS 1 PUBLISH of the subscriber check', () => {
    // Level 5, clean start, keepalive 10, empty properties; then the client id.
    assert.equal(mqttConnectPacket('haproxy-check', 10, 5).toString('hex'), '101a00044d5154540502000a00000d686170726f78792d636865636b')
    // QoS 1, topic "a/b", packet id 1, empty properties, empty payload.
    assert.equal(mqtt5PublishPacket('a/b').toString('hex'), '3208' + '0003612f62' + '0001' + '00')
    const long = mqtt5PublishPacket('t'.repeat(200))
    assert.deepEqual([...long.subarray(0, 3)], [0x32, 0xcd, 0x01], 'a remaining length over 127 takes two bytes')
  })

  it('checks for a subscriber of the ready topic under MQTT 5, and only for a CONNACK under MQTT 3.1.1', () => {
    const v5 = planInfra({ mqtt: { brokers: ['mqtt://b1:1883'], group: 'fleet' } })
    assert.equal(v5.check.readyTopic, 'routemq/control/ready')
    assert.match(renderHaproxy(v5), /tcp-check send-binary 32/)
    const v4 = planInfra({ mqtt: { brokers: ['mqtt://b1:1883'], protocolVersion: 4 } })
    assert.equal(v4.check.readyTopic, undefined)
    assert.match(renderHaproxy(v4), /tcp-check expect rbinary \^20020000/)
    assert.throws(() => planInfra({ mqtt: { brokers: ['mqtt://b1:1883'], protocolVersion: 4 }, infra: { check: { requireSubscriber: true } } }),
      (e: unknown) => e instanceof InvalidOptionError && e.field === 'infra.check.requireSubscriber')
    assert.equal(planInfra({ mqtt: { brokers: ['mqtt://b1:1883'] }, infra: { check: { requireSubscriber: false } } }).check.readyTopic, undefined)
  })

  it('keeps idle timeouts above 1.5 × the device keepalive, and names bad fields', () => {
    const plan = planInfra({ mqtt: { brokers: ['mqtt://b1:1883'] }, infra: { deviceKeepaliveSeconds: 120 } })
    assert.ok(plan.idleTimeoutSeconds > 180)
    assert.match(renderHaproxy(plan), new RegExp(`timeout client ${plan.idleTimeoutSeconds}s`))
    const field = (options: Parameters<typeof planInfra>[0]) => {
      try {
        planInfra(options)
      } catch (error) {
        if (error instanceof InvalidOptionError) return error.field
        throw error
      }
      return 'no error'
    }
    assert.equal(field({}), 'mqtt.brokers')
    assert.equal(field({ mqtt: { brokers: ['http://b:1'] } }), 'mqtt.brokers[0].url')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { appInstances: ['app'] } }), 'infra.appInstances[0]')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { balance: 'random' as never } }), 'infra.balance')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { name: 'My App' } }), 'infra.name')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { listen: { mqtt: 70000 } } }), 'infra.listen.mqtt')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { listen: { mqtt: 8080 } } }), 'infra.listen')
    assert.equal(field({ mqtt: { brokers: ['mqtts://b:8883'] } }), 'mqtt.brokers[0].url')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { appInstances: ['app;evil:1'] } }), 'infra.appInstances[0]')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { proxyProtocol: 'false' as never } }), 'infra.proxyProtocol')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, health: false }), 'health')
    assert.equal(field({ mqtt: { brokers: ['mqtt://b:1'] }, infra: { name: '1app' } }), 'infra.name')
    assert.deepEqual(planInfra({ mqtt: { brokers: ['mqtt://b:1'] }, health: { http: { host: '::', port: 9000 } } }).appInstances, [{ host: '127.0.0.1', port: 9000 }])
  })

  it('writes YAML whose strings stay strings', () => {
    const value = { on: 'on', null: 'x', '1': 'one', version: '1.0', octal: '08', empty: '', del: 'a\u007fb\u2028c', list: ['yes', 2, true, null], nested: [{ a: { b: [] } }], 'odd key': 'x: y' }
    const yaml = toYaml(value)
    assert.deepEqual(parseYamlDocuments(yaml), [value])
    assert.match(yaml, /^"on": "on"$/m, 'a key YAML 1.1 reads as a boolean is quoted')
    assert.doesNotMatch(yaml, /[\u007f\u2028]/, 'written escaped')
  })
})

/** The field of the InvalidOptionError `run` throws, or 'no error'. */
function fieldOf(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    if (error instanceof InvalidOptionError) return error.field
    throw error
  }
  return 'no error'
}

describe('balancer configs from hostile or mistaken names', () => {
  it('tells host names from anything else: RFC 1123 labels, IPv4, IPv6', () => {
    for (const host of ['b1', 'broker-1.example.com', 'Broker-1.EXAMPLE.com.', 'xn--bcher-kva.example', '10.0.0.1', '[2001:db8::5]', '::1', '[::ffff:10.0.0.1]', 'a'.repeat(63), '1b.example']) {
      assert.equal(isHostName(host), true, host)
    }
    for (const host of ['', 'b1;', '"${HOME}"', "b'1", 'a{b}', 'b$1', '-b1', 'b1-', 'b_1', 'a..b', '.', 'a b', 'a%3Bb', 'a'.repeat(64), `${'a.'.repeat(127)}a`, '10.1', '0x7f.1', '999.1.1.1', '[b1]', '[fe80::1%eth0]', '[::1];']) {
      assert.equal(isHostName(host), false, host)
    }
  })

  it("refuses a broker host that a config could not carry, naming the broker's field", () => {
    // WHATWG URL parsing keeps all of these in the host of an mqtt: or ws: URL.
    for (const url of ['mqtt://"${HOME}":1883', 'mqtt://b1;}server{:1883', "mqtt://b'1:1883", 'mqtt://b$1:1883', 'mqtt://-b1:1883', 'mqtt://10.1:1883', 'ws://a{b}:9001/mqtt']) {
      assert.doesNotThrow(() => new URL(url), url)
      let error: unknown
      try {
        planInfra({ mqtt: { brokers: ['mqtt://b0:1883', url] } })
      } catch (e) {
        error = e
      }
      assert.ok(error instanceof InvalidOptionError, `${url} is refused`)
      assert.equal(error.field, 'mqtt.brokers[1].url')
      assert.match(error.message, /DNS name .* IPv4 address or a bracketed IPv6 address/)
    }
  })

  it('writes DNS names, IPv4 and IPv6 addresses as they are', () => {
    const plan = planInfra({ mqtt: { brokers: ['mqtt://Broker-1.EXAMPLE.com.:1883', 'mqtt://xn--bcher-kva.example:1883', 'mqtt://10.0.0.1:1883', 'mqtt://[2001:db8::5]:1883'] } })
    const haproxy = renderHaproxy(plan)
    const nginx = renderNginx(plan)
    for (const address of ['Broker-1.EXAMPLE.com.:1883', 'xn--bcher-kva.example:1883', '10.0.0.1:1883', '[2001:db8::5]:1883']) {
      assert.match(haproxy, new RegExp(` ${address.replace(/[.[\]]/g, '\\$&')} check`))
      assert.ok(nginx.includes(`server ${address} `), address)
    }
  })

  it('refuses app instance and health server hosts that are not host names, naming the field', () => {
    const brokers = ['mqtt://b1:1883']
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, health: { http: { host: 'app;}server{', port: 9464 } } })), 'health.http.host')
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { appInstances: ['app-1:9464', 'a"b:9464'] } })), 'infra.appInstances[1]')
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { appInstances: ['::1:9464'] } })), 'infra.appInstances[0]', 'an IPv6 address needs brackets before its port')
    assert.deepEqual(planInfra({ mqtt: { brokers }, infra: { appInstances: ['[::1]:9464', 'app-2.internal:9464'] } }).appInstances, [{ host: '::1', port: 9464 }, { host: 'app-2.internal', port: 9464 }])
  })

  it('quotes NGINX paths, and refuses paths that would break out of the quotes or expand', () => {
    const brokers = ['mqtt://b1:1883']
    const nginx = renderNginx(planInfra({ mqtt: { brokers }, infra: { nginxPid: '/run/odd+name@1.pid', nginxErrorLog: 'logs/error.log', nginxStreamModule: '/opt/nginx/ngx_stream_module.so' } }))
    assert.match(nginx, /^pid "\/run\/odd\+name@1\.pid";$/m)
    assert.match(nginx, /^error_log "logs\/error\.log" warn;$/m)
    assert.match(nginx, /^load_module "\/opt\/nginx\/ngx_stream_module\.so";$/m)
    for (const path of ['/run/a#b.pid', '/run/$pid', '/run/a"b', '/run/a\\b', '/run/a;b', '/run/a b', '']) {
      assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { nginxPid: path } })), 'infra.nginxPid', path)
    }
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { nginxStreamModule: '/m.so;#' } })), 'infra.nginxStreamModule')
  })

  it('refuses broker ids that would become the same HAProxy server name', () => {
    const brokers = [{ url: 'mqtt://b1:1883', id: 'edge:a' }, { url: 'mqtt://b2:1883', id: 'edge_a' }]
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers } })), 'mqtt.brokers[1].id')
    const odd = planInfra({ mqtt: { brokers: [{ url: 'mqtt://b1:1883', id: 'edge:A.1' }] } })
    assert.match(renderHaproxy(odd), /^ {2}server edge_A\.1 b1:1883 check$/m, 'an id keeps only the characters of a server name')
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers: [{ url: 'mqtt://b1:1883', id: 'edge "A"; {1}' }] } })), 'mqtt.brokers[0].id', 'quotes, spaces and braces are no id')
  })
})

describe('operational endpoints stay internal', () => {
  const brokers = ['mqtt://b1:1883']

  it("binds HAProxy's stats page and the app's HTTP endpoints to 127.0.0.1 by default, and NGINX's too", () => {
    const plan = planInfra({ mqtt: { brokers } })
    const haproxy = renderHaproxy(plan)
    assert.match(haproxy, /^listen stats\n {2}bind 127\.0\.0\.1:8404$/m)
    assert.match(haproxy, /^frontend routemq_http\n {2}bind 127\.0\.0\.1:8080$/m)
    assert.match(haproxy, /^frontend routemq_mqtt\n {2}bind :1883$/m, 'MQTT is what the balancer is for: every address')
    assert.doesNotMatch(haproxy, /http-request auth/, 'no credentials needed on loopback')
    assert.deepEqual(plan.internal, { host: '127.0.0.1', loopback: true, credentials: undefined })
    assert.match(renderNginx(plan), /^ {4}listen 127\.0\.0\.1:8080;$/m)
    assert.match(renderNginx(planInfra({ mqtt: { brokers }, infra: { internal: { host: '::1' } } })), /^ {4}listen \[::1\]:8080;$/m)
  })

  it('asks for credentials named by environment variables off loopback, and never writes their values', () => {
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { internal: { host: '0.0.0.0' } } })), 'infra.internal.userEnv')
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { internal: { host: '10.0.0.5', userEnv: 'OPS_USER' } } })), 'infra.internal.passwordEnv')
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { internal: { host: '0.0.0.0;', userEnv: 'U', passwordEnv: 'P' } } })), 'infra.internal.host')
    let pasted: unknown
    try {
      planInfra({ mqtt: { brokers }, infra: { internal: { host: '0.0.0.0', userEnv: 'ops', passwordEnv: 'hunter2!' } } })
    } catch (error) {
      pasted = error
    }
    assert.ok(pasted instanceof InvalidOptionError && pasted.field === 'infra.internal.passwordEnv', 'a credential given instead of a variable name is refused')
    assert.doesNotMatch(pasted.message, /hunter2/, 'and not echoed')

    const plan = planInfra({ mqtt: { brokers }, infra: { internal: { host: '0.0.0.0', userEnv: 'OPS_USER', passwordEnv: 'OPS_PASSWORD' } } })
    const haproxy = renderHaproxy(plan)
    assert.match(haproxy, /^\.if !defined\(OPS_PASSWORD\)\n {2}\.alert /m, 'HAProxy does not start without the password')
    assert.match(haproxy, /^ {2}user "\$\{OPS_USER\}" insecure-password "\$\{OPS_PASSWORD\}"$/m)
    assert.equal(haproxy.match(/http-request auth realm routemq if !\{ http_auth\(routemq_internal\) \}/g)?.length, 2, 'on the stats page and on the HTTP endpoints')
    assert.match(haproxy, /^listen stats\n {2}bind 0\.0\.0\.0:8404$/m)
    assert.equal(fieldOf(() => renderNginx(plan)), 'infra.internal.host', 'NGINX cannot read credentials from its environment')
  })

  it('renders no Ingress: the health port is reached through an internal ClusterIP Service only', () => {
    assert.equal(fieldOf(() => planInfra({ mqtt: { brokers }, infra: { ingressHost: 'fleet.example.com' } })), 'infra.ingressHost')
    for (const clean of [false, true]) {
      const objects = renderKubernetesObjects(planInfra({ mqtt: { brokers, clean }, health: { http: { port: 9555 } } })) as Record<string, any>[]
      assert.ok(!objects.some((o) => o.kind === 'Ingress'))
      const services = objects.filter((o) => o.kind === 'Service')
      const health = services.filter((o) => o.spec.ports.some((p: { targetPort: unknown }) => p.targetPort === 'health' || p.targetPort === 9555))
      assert.ok(health.length > 0)
      for (const service of health) {
        assert.ok(service.spec.type === 'ClusterIP' || service.spec.clusterIP === 'None', `${service.metadata.name} stays inside the cluster`)
        assert.equal(service.spec.ports.length, 1, 'and carries the health port only')
      }
      assert.deepEqual(services.find((o) => o.metadata.name === 'routemq-health')?.spec.ports, [{ name: 'health', port: 9555, targetPort: 'health', protocol: 'TCP' }])
    }
  })

  it('keeps broker credentials out of every rendered config', () => {
    const plan = planInfra({ mqtt: { brokers: ['mqtt://device:url-s3cret@b1:1883', { url: 'mqtt://b2:1883', username: 'app', password: 'option-s3cret' }] } })
    for (const text of [renderHaproxy(plan), renderNginx(plan), renderKubernetes(plan)]) assert.doesNotMatch(text, /s3cret/)
  })
})

/** The message of the InvalidOptionError `run` throws, or 'no error'. */
function messageOf(run: () => unknown): string {
  try {
    run()
  } catch (error) {
    if (error instanceof InvalidOptionError) return error.message
    throw error
  }
  return 'no error'
}

describe('balancer options with typos, wrong types and impossible values', () => {
  const mqtt = { brokers: ['mqtt://b1:1883'] }
  // JSON from --config reaches planInfra untyped; these are what a reader typed there.
  const plan = (options: unknown) => () => planInfra(options as Parameters<typeof planInfra>[0])

  it('refuses an unknown key under infra, at every depth, with the full path of the option meant', () => {
    const cases: [unknown, string][] = [
      [{ imag: 'x' }, 'Option "infra.imag" is invalid: is not an option; did you mean infra.image?'],
      [{ replica: 5 }, 'Option "infra.replica" is invalid: is not an option; did you mean infra.replicas?'],
      [{ lisen: {} }, 'Option "infra.lisen" is invalid: is not an option; did you mean infra.listen?'],
      [{ chek: {} }, 'Option "infra.chek" is invalid: is not an option; did you mean infra.check?'],
      [{ check: { intervalMS: 5 } }, 'Option "infra.check.intervalMS" is invalid: is not an option; did you mean infra.check.intervalMs?'],
      [{ listen: { mqtts: 1 } }, 'Option "infra.listen.mqtts" is invalid: is not an option; did you mean infra.listen.mqtt?'],
    ]
    for (const [infra, message] of cases) assert.equal(messageOf(plan({ mqtt, infra })), message, JSON.stringify(infra))
    const credentials = messageOf(plan({ mqtt, infra: { internal: { host: '127.0.0.1', user: 'admin', password: 'hunter2' } } }))
    assert.match(credentials, /^Option "infra\.internal\.(user|password)" is invalid: is not an option/)
    assert.doesNotMatch(credentials, /hunter2/, 'a credential given as an option is not echoed')
  })

  it('refuses infra that is not an object', () => {
    for (const infra of ['x', 5, [], null]) assert.equal(fieldOf(plan({ mqtt, infra })), 'infra', JSON.stringify(infra))
  })

  it('refuses unknown keys in health and at the top level, instead of rendering the defaults', () => {
    assert.equal(messageOf(plan({ mqtt, health: { http: { prot: 9000 } } })), 'Option "health.http.prot" is invalid: is not an option; did you mean health.http.port?')
    assert.equal(messageOf(plan({ mqtt, helth: {} })), 'Option "helth" is invalid: is not an option; did you mean health?')
    assert.equal(messageOf(plan({ mqtt, infar: {} })), 'Option "infar" is invalid: is not an option; did you mean infra?')
    assert.equal(messageOf(plan({ mqtt: { ...mqtt, keepaliveSecond: 5 } })), 'Option "mqtt.keepaliveSecond" is invalid: is not an option; did you mean mqtt.keepaliveSeconds?')
  })

  it('refuses values beyond what MQTT, HAProxy and Kubernetes take: keepalive over 65535 s, timers over 2^31 - 1 ms', () => {
    assert.equal(fieldOf(plan({ mqtt, infra: { deviceKeepaliveSeconds: 65_536 } })), 'infra.deviceKeepaliveSeconds')
    assert.equal(fieldOf(plan({ mqtt, infra: { deviceKeepaliveSeconds: 3_000_000 } })), 'infra.deviceKeepaliveSeconds')
    assert.equal(fieldOf(plan({ mqtt, infra: { check: { intervalMs: MAX_TIMER_MS + 1 } } })), 'infra.check.intervalMs')
    assert.equal(fieldOf(plan({ mqtt, infra: { check: { intervalMs: 1e12 } } })), 'infra.check.intervalMs')
    assert.equal(fieldOf(plan({ mqtt, infra: { check: { fall: 1e9 } } })), 'infra.check.fall')
    assert.equal(fieldOf(plan({ mqtt, infra: { check: { rise: 1e9 } } })), 'infra.check.rise')
    assert.equal(fieldOf(plan({ mqtt, infra: { replicas: 2 ** 31 } })), 'infra.replicas')
    const longest = planInfra({ mqtt, infra: { deviceKeepaliveSeconds: 65_535, check: { intervalMs: MAX_TIMER_MS } } })
    assert.match(renderHaproxy(longest), new RegExp(`inter ${MAX_TIMER_MS}ms`), 'the largest values are still rendered')
  })

  it('refuses one variable named for both the user and the password of the internal listeners', () => {
    assert.equal(fieldOf(plan({ mqtt, infra: { internal: { userEnv: 'U', passwordEnv: 'U' } } })), 'infra.internal.passwordEnv')
    assert.equal(fieldOf(plan({ mqtt, infra: { internal: { host: '0.0.0.0', userEnv: 'OPS', passwordEnv: 'OPS' } } })), 'infra.internal.passwordEnv')
  })

  it("prefixes a nested part's did-you-mean as it prefixes its field", () => {
    const run = () => withFieldPrefix('mqtt', () => resolveBrokerPoolOptions({ ...mqtt, keepaliveSecond: 5 } as never, 'x'))
    assert.equal(messageOf(run), 'Option "mqtt.keepaliveSecond" is invalid: is not an option; did you mean mqtt.keepaliveSeconds?')
    assert.equal(messageOf(() => withFieldPrefix('mqtt', () => resolveBrokerPoolOptions({ ...mqtt, session: {} } as never, 'x'))),
      'Option "mqtt.session" is invalid: is not an option; did you mean mqtt.sessions?')
  })
})
