import assert from 'node:assert/strict'
import {
  InvalidOptionError, InvalidRouteError, parseTopicPattern, RouteConflictError, Router, type MessageContext,
} from '../../src/index.js'

const noop = (): void => {}

describe('topic patterns', () => {
  it('turns {param} levels into + in the subscription filter', () => {
    const pattern = parseTopicPattern('devices/{id}/sensors/{sensor}')
    assert.equal(pattern.filter, 'devices/+/sensors/+')
    assert.deepEqual(pattern.params, [[1, 'id'], [3, 'sensor']])
  })

  it('keeps MQTT wildcards and literal levels, empty ones included', () => {
    assert.equal(parseTopicPattern('a/+/b/#').filter, 'a/+/b/#')
    assert.equal(parseTopicPattern('a//b').filter, 'a//b')
  })

  for (const [pattern, why] of [
    ['', /empty/],
    ['a/#/b', /last level/],
    ['a/{id}/{id}', /appears twice/],
    ['a/dev-{id}', /whole level/],
    ['a/b+', /whole level/],
    ['$share/g/a', /shared/],
    ['a/{1x}', /whole level/],
  ] as const) {
    it(`rejects ${JSON.stringify(pattern)} with InvalidRouteError`, () => {
      assert.throws(() => parseTopicPattern(pattern), (e: unknown) => e instanceof InvalidRouteError && e.code === 'INVALID_ROUTE' && why.test(e.message))
    })
  }
})

describe('Router', () => {
  it('matches a {param} route and hands the values over by name', () => {
    const router = new Router().on('devices/{id}/sensors/{sensor}', noop)
    const match = router.match('devices/d-7/sensors/temp')
    assert.deepEqual(match?.params, { id: 'd-7', sensor: 'temp' })
    assert.equal(match?.route.pattern, 'devices/{id}/sensors/{sensor}')
  })

  it('returns undefined for a topic no route matches', () => {
    const router = new Router().on('devices/{id}/status', noop)
    assert.equal(router.match('devices/7'), undefined)
    assert.equal(router.match('devices/7/status/extra'), undefined)
    assert.equal(router.match('other/7/status'), undefined)
  })

  it('prefers a literal level over a parameter, and a parameter over #', () => {
    const router = new Router()
      .on('devices/#', noop, { name: 'rest' })
      .on('devices/{id}/status', noop, { name: 'param' })
      .on('devices/gateway/status', noop, { name: 'literal' })
    assert.equal(router.match('devices/gateway/status')?.route.name, 'literal')
    assert.equal(router.match('devices/7/status')?.route.name, 'param')
    assert.equal(router.match('devices/7/other')?.route.name, 'rest')
  })

  it('backtracks when the literal branch dead-ends', () => {
    const router = new Router().on('a/b/c', noop, { name: 'abc' }).on('a/{x}/d', noop, { name: 'xd' })
    assert.equal(router.match('a/b/d')?.route.name, 'xd')
    assert.deepEqual(router.match('a/b/d')?.params, { x: 'b' })
  })

  it('lets # match the parent level, as MQTT does', () => {
    const router = new Router().on('sport/#', noop)
    assert.ok(router.match('sport'))
    assert.ok(router.match('sport/tennis/player1'))
  })

  it('never matches $-topics with a first-level wildcard', () => {
    const router = new Router().on('#', noop, { name: 'all' }).on('$SYS/broker/uptime', noop, { name: 'sys' })
    assert.equal(router.match('$SYS/broker/load'), undefined)
    assert.equal(router.match('$SYS/broker/uptime')?.route.name, 'sys')
    assert.equal(router.match('x/y')?.route.name, 'all')
  })

  it('prefixes group routes, nests groups and orders middleware group-first', () => {
    const outer = (): void => {}
    const inner = (): void => {}
    const own = (): void => {}
    const router = new Router()
    router.group({ prefix: 'fleet/{region}', middleware: [outer] }, (fleet) => {
      fleet.group({ prefix: '/devices/', middleware: [inner] }, (devices) => {
        devices.on('{id}/telemetry', noop, { middleware: [own], qos: 1 })
      })
    })
    const match = router.match('fleet/eu/devices/7/telemetry')
    assert.deepEqual(match?.params, { region: 'eu', id: '7' })
    assert.equal(match?.route.pattern, 'fleet/{region}/devices/{id}/telemetry')
    assert.deepEqual(router.subscriptions(), [{ topic: 'fleet/+/devices/+/telemetry', qos: 1, identifier: 1 }])
  })

  it('subscribes shared routes as $share/<group>/<filter> and matches the plain topic', () => {
    const router = new Router({ sharedGroup: 'workers' })
      .on('jobs/{kind}', noop, { shared: true, qos: 1 })
      .on('audit/#', noop, { shared: 'auditors' })
    assert.deepEqual(router.subscriptions(), [
      { topic: '$share/workers/jobs/+', qos: 1, identifier: 1 },
      { topic: '$share/auditors/audit/#', qos: 0, identifier: 2 },
    ])
    assert.equal(router.match('jobs/resize')?.route.subscription, '$share/workers/jobs/+')
  })

  it('rejects a bad shared group name, qos and middleware', () => {
    assert.throws(() => new Router().on('a', noop, { shared: 'a/b' }), InvalidRouteError)
    assert.throws(() => new Router({ sharedGroup: '' }), InvalidRouteError)
    assert.throws(() => new Router().on('a', noop, { qos: 3 as never }), /qos must be 0, 1 or 2/)
    assert.throws(() => new Router().on('a', noop, { middleware: [{} as never] }), /middleware\[0\] must be a function/)
    assert.throws(() => new Router().on('a', 'nope' as never), /handler must be/)
  })

  it('refuses a misspelt or mistyped route, group or router option, naming the route', () => {
    assert.throws(() => new Router().on('a', noop, { qso: 1 } as never), (e: unknown) => e instanceof InvalidRouteError && /"a" is invalid: qso is not an option; did you mean qos\?/.test(e.message))
    assert.throws(() => new Router().on('a', noop, { shared: 1 } as never), /shared must be true, false or a group name/)
    assert.throws(() => new Router().on('a', noop, { payload: 'jsn' } as never), /payload must be 'auto', 'json', 'text' or 'buffer'/)
    assert.throws(() => new Router().on('a', noop, { onError: { deadLeter: 'dl' } } as never), /onError has no option "deadLeter"; did you mean deadLetter/)
    assert.throws(() => new Router().group({ prefx: 'devices' } as never, () => undefined), /prefx is not an option; did you mean prefix\?/)
    assert.throws(() => new Router().group({ prefix: 'd' }, (g) => g.group({ middleware: 'x' } as never, () => undefined)), /Route "d" is invalid: middleware must be a list/)
    assert.throws(() => new Router({ sharedgroup: 'x' } as never), (e: unknown) => e instanceof InvalidOptionError && e.field === 'sharedgroup' && /did you mean sharedGroup\?/.test(e.message))
  })

  it('refuses two routes on the same filter, whatever their parameter names', () => {
    const router = new Router().on('devices/{id}/status', noop)
    assert.throws(
      () => router.on('devices/{deviceId}/status', noop),
      (e: unknown) => e instanceof RouteConflictError && e.subscription === 'devices/+/status' && e.existing === 'devices/{id}/status',
    )
    assert.throws(() => router.on('devices/+/status', noop), RouteConflictError)
    assert.equal(router.routes.length, 1)
  })

  it('routes among 150 routes by topic, each to its own handler', () => {
    const router = new Router()
    for (let i = 0; i < 50; i++) {
      router.on(`site${i}/devices/{id}/telemetry`, noop, { name: `t${i}` })
      router.on(`site${i}/devices/{id}/status`, noop, { name: `s${i}` })
      router.on(`site${i}/alerts/#`, noop, { name: `a${i}` })
    }
    assert.equal(router.routes.length, 150)
    for (let i = 0; i < 50; i++) {
      assert.equal(router.match(`site${i}/devices/x${i}/telemetry`)?.route.name, `t${i}`)
      assert.deepEqual(router.match(`site${i}/devices/x${i}/status`)?.params, { id: `x${i}` })
      assert.equal(router.match(`site${i}/alerts/fire/floor2`)?.route.name, `a${i}`)
    }
    assert.equal(router.match('site50/devices/x/telemetry'), undefined)
  })

  it('types params from the pattern', () => {
    const router = new Router()
    router.on('devices/{id}/sensors/{sensor}', (ctx: MessageContext<{ readonly id: string; readonly sensor: string }>) => {
      const id: string = ctx.params.id
      return id + ctx.params.sensor
    })
    assert.equal(router.routes.length, 1)
  })
})

// Issue 15 second review: values of the wrong type met string methods and failed as raw TypeErrors.
describe('Router refuses wrong types with InvalidRouteError', () => {
  const refusal = (fn: () => unknown): string => {
    try {
      fn()
    } catch (error) {
      if (error instanceof InvalidRouteError) return error.message
      throw error
    }
    assert.fail('accepted')
  }

  it('refuses a group prefix that is not a string', () => {
    assert.match(refusal(() => new Router().group({ prefix: 5 as never }, noop)), /prefix must be topic levels/)
    assert.match(refusal(() => new Router().group({ prefix: 'a' }, (a) => { a.group({ prefix: 5 as never }, noop) })), /prefix must be topic levels/)
  })

  it('refuses a group whose second argument is not a function', () => {
    assert.match(refusal(() => new Router().group({ prefix: 'a' }, 5 as never)), /^Route "a" is invalid: group needs a function/)
    assert.match(refusal(() => new Router().group({ prefix: 'a' }, (a) => { a.group({ prefix: 'b' }, undefined as never) })), /^Route "a\/b" is invalid: group needs a function/)
  })

  it('says a topic that is not a string must be a string, not that it is empty', () => {
    assert.match(refusal(() => new Router().on(5 as never, noop)), /the topic must be a string, not number/)
    assert.match(refusal(() => new Router().group({ prefix: 'a' }, (a) => { a.on(null as never, noop) })), /the topic must be a string, not null/)
    assert.match(refusal(() => new Router().on('', noop)), /the topic is empty/)
  })

  it('suggests deadLetter for onError: { deadLeter }', () => {
    const message = refusal(() => new Router().on('a', noop, { onError: { deadLeter: 'dl' } as never }))
    assert.match(message, /has no option "deadLeter"; did you mean deadLetter\?/)
    assert.doesNotMatch(refusal(() => new Router().on('a', noop, { onError: { retry: 3 } as never })), /did you mean/)
  })
})
