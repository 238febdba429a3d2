import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import {
  DeviceRedirects, ENV_VARIABLES, GeoResolver, isRouteMqError, loadBalancingOptionsFromEnv, MessageDispatcher, parseTopicPattern, redactUrl,
  Router, silentLogger, validateLoadBalancingOptions, type LoadBalancingOptions,
} from '../../src/index.js'
import { renderHaproxy, renderKubernetes, renderNginx } from '../../plugins/infra/index.js'
import { planInfra } from '../../src/composition/index.js'
import { isHostName } from '../../src/host-name.js'
import { decodePayload } from '../../src/routemq/payload.js'
import { publishTopicProblem } from '../../src/routemq/publish-topic.js'
import { inbound, rootContainerForTests } from '../support/inbound-message.js'
import { MmdbUint, writeMmdb } from '../support/mmdb-writer.js'

/**
 * Property-based fuzzing of every input a user or a device controls: "a named
 * error or a correct answer, never a crash, never a hang". The seed is fixed
 * and the runs are bounded, so a failure reproduces and the suite takes
 * seconds; fast-check prints the shrunk counterexample.
 */
const RUNS = { seed: 15_2026, numRuns: 300 } as const

/** Calls `run`; a throw must be one of this package's named errors. */
function namedErrorOrValue<T>(run: () => T): T | undefined {
  try {
    return run()
  } catch (error) {
    assert.ok(isRouteMqError(error), `not a named error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`)
    return undefined
  }
}

/** Any UTF-16 string: whole code points, and lone surrogates and control characters among them. */
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '/', '+', '#', '{', '}', '$', '\u0000', '\u0001', '\u007F', '\uFFFF', '\uD800', ' '), maxLength: 20 }),
)

// eslint-disable-next-line no-control-regex -- the control characters are what the check looks for
const FORBIDDEN = /[\u0000-\u001F\u007F-\u009F]|\p{Noncharacter_Code_Point}/u

describe('Fuzzing (fast-check, fixed seed)', () => {
  describe('topics', () => {
    it('a publish topic is refused with a reason, or is one every broker accepts', () => {
      fc.assert(fc.property(anyText, (topic) => {
        const problem = publishTopicProblem(topic)
        if (problem !== undefined) return assert.equal(typeof problem, 'string')
        assert.ok(topic.length > 0 && !/[+#]/.test(topic))
        assert.equal(Buffer.from(topic, 'utf8').toString('utf8'), topic, 'well-formed UTF-16, so its UTF-8 is what was meant')
        assert.ok(Buffer.byteLength(topic) <= 65_535)
        assert.ok(!FORBIDDEN.test(topic), `accepted ${JSON.stringify(topic)}`)
      }), RUNS)
    })

    it('a route pattern is compiled or refused with a named error, and matching any topic never throws', () => {
      fc.assert(fc.property(fc.array(anyText, { maxLength: 4 }), anyText, (patterns, topic) => {
        const router = new Router()
        for (const pattern of patterns) {
          namedErrorOrValue(() => router.on(pattern, () => undefined))
          const parsed = namedErrorOrValue(() => parseTopicPattern(pattern))
          if (parsed) assert.ok(!FORBIDDEN.test(parsed.filter))
        }
        const match = router.match(topic)
        if (match) assert.ok(router.routes.includes(match.route))
      }), RUNS)
    })
  })

  describe('payloads', () => {
    const formats = fc.constantFrom<'auto' | 'json' | 'text' | 'buffer'>('auto', 'json', 'text', 'buffer')
    const contentTypes = fc.option(fc.oneof(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain'), anyText), { nil: undefined })
    const bodies = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)), fc.json().map((text) => Buffer.from(text)), anyText.map((text) => Buffer.from(text)))

    it('a body is decoded as its route asks, or fails with MalformedPayloadError', () => {
      fc.assert(fc.property(bodies, formats, contentTypes, (body, format, contentType) => {
        const value = namedErrorOrValue(() => decodePayload('t', body, format, contentType))
        if (format === 'buffer') assert.equal(value, body)
        if (format === 'text') assert.equal(value, body.toString('utf8'))
        if (format === 'json' && value !== undefined) assert.deepEqual(value, JSON.parse(body.toString('utf8')))
      }), RUNS)
    })

    it('every QoS 1 message is settled exactly once, whatever its topic and body, and none hangs', async () => {
      await fc.assert(fc.asyncProperty(
        fc.array(fc.record({ topic: fc.oneof(fc.constantFrom('t/1', 't/2', 'json/1', 'x'), anyText), body: bodies, fail: fc.boolean() }), { minLength: 1, maxLength: 12 }),
        async (messages) => {
          const router = new Router()
            .on('t/{n}', (ctx) => { if (ctx.raw.length % 2) throw new Error('odd') })
            .on('json/{n}', () => undefined, { payload: 'json', onError: { deadLetter: 'dl' } })
          const dispatcher = new MessageDispatcher({
            router, container: rootContainerForTests(), logger: silentLogger, onError: 'ack', maxInFlight: 4, maxQueued: 100, ordering: 'topic',
            publish: async () => undefined,
          })
          const sent = messages.map(({ topic, body }) => inbound(topic, body))
          for (const message of sent) dispatcher.receive(message)
          const drained = await dispatcher.drain(2_000)
          assert.equal(drained.drained, true, 'no message hangs')
          for (const message of sent) assert.equal(message.settlements.length, 1)
        },
      ), { ...RUNS, numRuns: 100 })
    })
  })

  describe('options', () => {
    const VALID: LoadBalancingOptions = Object.freeze({
      mqtt: { brokers: ['mqtt://127.0.0.1:1883', { url: 'mqtt://127.0.0.1:1884', id: 'b2', weight: 2 }], strategy: 'round-robin' },
      database: { primary: 'postgres://app@127.0.0.1:5432/app', replicas: [{ url: 'postgres://app@127.0.0.1:5433/app', id: 'r1', region: 'eu' }] },
      health: { http: { port: 0 } },
    }) as LoadBalancingOptions

    /** The valid options with one value, at any depth, replaced by anything (or a key added). */
    const mutated = fc.tuple(fc.nat(), fc.anything({ maxDepth: 2 }), fc.boolean(), fc.string({ maxLength: 12 })).map(([at, value, addKey, key]) => {
      const copy = structuredClone(VALID) as unknown as Record<string, unknown>
      const paths: (string | number)[][] = []
      const walk = (node: unknown, path: (string | number)[]): void => {
        paths.push(path)
        if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, [...path, Array.isArray(node) ? Number(k) : k])
      }
      walk(copy, [])
      const path = paths[at % paths.length]!
      if (path.length === 0) return addKey ? { ...copy, [key]: value } : value
      let parent: Record<string | number, unknown> = copy
      for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>
      const last = path[path.length - 1]!
      if (addKey && parent[last] && typeof parent[last] === 'object' && !Array.isArray(parent[last])) (parent[last] as Record<string, unknown>)[key] = value
      else parent[last] = value
      return copy
    })

    it('a mistyped or mangled options tree gets a named error naming a field, never a TypeError', () => {
      fc.assert(fc.property(fc.oneof(mutated, fc.anything({ maxDepth: 3 })), (options) => {
        namedErrorOrValue(() => validateLoadBalancingOptions(options as LoadBalancingOptions))
      }), RUNS)
    })

    it('environment variables with any values give options or a named error', () => {
      const names = ENV_VARIABLES.map((variable) => variable.name).filter((name) => !/FILE|PATH/.test(name))
      fc.assert(fc.property(fc.dictionary(fc.constantFrom(...names), fc.oneof(anyText, fc.constantFrom('true', 'false', '5', '-1', '1e309', 'mqtt://a:1883', ' , ,'))), (env) => {
        const options = namedErrorOrValue(() => loadBalancingOptionsFromEnv({ ROUTEMQ_MQTT_BROKERS: 'mqtt://127.0.0.1:1883', ...env }))
        if (options) namedErrorOrValue(() => validateLoadBalancingOptions(options))
      }), RUNS)
    })

    it('a redacted URL never shows what was written before an @', () => {
      const secret = fc.string({ unit: fc.constantFrom(...'abcXYZ0123456789/?#:%@!$'.split('')), minLength: 6, maxLength: 16 })
      fc.assert(fc.property(fc.constantFrom('mqtt', 'mqtts', 'postgres', 'ws'), fc.constantFrom('u', 'user', ''), secret, fc.constantFrom('b', 'broker.example', '10.0.0.1'), (scheme, user, password, host) => {
        const redacted = namedErrorOrValue(() => redactUrl(`${scheme}://${user}:${password}@${host}:1883/x`))
        if (redacted !== undefined) assert.ok(!redacted.includes(password), `${redacted} shows ${password}`)
      }), RUNS)
    })
  })

  describe('balancer configs', () => {
    it('a broker host is rendered only when it is a host name; anything else is refused with a named error', () => {
      const hosts = fc.oneof(fc.domain(), fc.ipV4(), anyText, fc.string({ unit: fc.constantFrom(...'ab1.-;{}\'"$ \\#\n'.split('')), minLength: 1, maxLength: 12 }))
      const ids = fc.option(fc.oneof(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), anyText), { nil: undefined })
      fc.assert(fc.property(hosts, ids, (host, id) => {
        const brokers = [{ url: `mqtt://${host}:1883`, ...(id === undefined ? {} : { id }) }]
        const plan = namedErrorOrValue(() => planInfra({ mqtt: { brokers } }))
        if (!plan) return
        const parsedHost = new URL(`mqtt://${host}:1883`).hostname.replace(/^\[|\]$/g, '')
        assert.ok(isHostName(parsedHost), `rendered a config for host ${JSON.stringify(parsedHost)}`)
        for (const config of [renderHaproxy(plan), renderNginx(plan), renderKubernetes(plan)]) assert.ok(config.includes(parsedHost))
      }), RUNS)
    })
  })

  describe('geo inputs', () => {
    let dir: string
    let resolver: GeoResolver
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'fuzz-geo-'))
      const record = (continent: string, country: string) => ({ continent: { code: continent, geoname_id: new MmdbUint(1, 4) }, country: { iso_code: country, geoname_id: new MmdbUint(2, 4) } })
      await writeFile(join(dir, 'city.mmdb'), writeMmdb([
        { network: '81.2.69.0/24', data: record('EU', 'GB') },
        { network: '2001:218::/32', data: record('AS', 'JP') },
      ], { databaseType: 'GeoIP2-City' }))
      resolver = await GeoResolver.open({
        database: join(dir, 'city.mmdb'), watch: false, defaultRegion: 'global',
        rules: [{ region: 'eu', continents: ['EU'] }, { region: 'apac', continents: ['AS'] }],
        endpoints: { eu: { brokers: ['mqtts://eu.example:8883'] }, global: { brokers: ['mqtts://global.example:8883'] } },
      })
    })
    after(async () => {
      resolver?.close()
      await rm(dir, { recursive: true, force: true })
    })

    const addresses = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), anyText, fc.anything({ maxDepth: 1 }))

    it('any lookup input gets a location in a known region, and results cannot be changed', () => {
      fc.assert(fc.property(addresses, (ip) => {
        const location = resolver.lookup(ip)
        assert.ok(resolver.regions.includes(location.region))
        assert.ok(Object.isFrozen(location))
      }), RUNS)
    })

    it('redirects answer addresses and refuse whatever the resolver did not make', () => {
      const redirects = new DeviceRedirects({ resolver })
      const forged = fc.record({ ip: anyText, region: anyText, reason: anyText, endpoints: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] })
      fc.assert(fc.property(fc.oneof(addresses, forged), (input) => {
        const redirect = namedErrorOrValue(() => redirects.brokersFor(input))
        if (redirect) for (const url of redirect.brokers) assert.ok(['mqtts://eu.example:8883', 'mqtts://global.example:8883'].includes(url), url)
      }), RUNS)
    })

    it('region rules are accepted or refused with a named error', () => {
      fc.assert(fc.property(fc.anything({ maxDepth: 3 }), fc.anything({ maxDepth: 2 }), (rules, endpoints) => {
        namedErrorOrValue(() => GeoResolver.validate({ database: '/nonexistent.mmdb', rules, endpoints } as never))
      }), RUNS)
    })
  })
})
