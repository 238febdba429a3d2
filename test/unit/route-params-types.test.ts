// `ctx.params` is typed from the route's pattern and from every enclosing
// group's prefix. The type half of this test is the build: each
// `@ts-expect-error` below fails `tsc` ("unused directive") if the line it
// marks compiles, so a misspelt parameter that slipped through the types would
// break `npm test`. The run half checks the typed names carry the topic's values.
import assert from 'node:assert/strict'
import { Router, type MessageContext, type TopicParams } from '../../src/index.js'

/** Compiles only when `A` and `B` are mutually assignable. */
function sameType<A, B extends A>(check: A extends B ? true : false): void {
  assert.equal(check, true)
}

describe('typed route parameters', () => {
  it('types a route pattern\'s names exactly: a misspelt one does not compile', () => {
    const router = new Router()
    router.on('devices/{id}/sensors/{sensor}', (ctx) => {
      const id: string = ctx.params.id
      const sensor: string = ctx.params.sensor
      // @ts-expect-error no `{typo}` level in the pattern
      void ctx.params.typo
      return [id, sensor]
    })
    router.on('status', (ctx) => {
      // @ts-expect-error a pattern without `{name}` levels has no parameters
      void ctx.params.id
    })
    sameType<TopicParams<'a/{x}/b/{y}'>, { readonly x: string; readonly y: string }>(true)
    assert.deepEqual(router.match('devices/7/sensors/t1')?.params, { id: '7', sensor: 't1' })
  })

  it('gives every route of a group the names of the group\'s prefix, nested groups adding theirs', async () => {
    const router = new Router()
    const seen: string[] = []
    router.group({ prefix: 'sites/{site}' }, (sites) => {
      sites.on('hello', (ctx) => {
        seen.push(`hello ${ctx.params.site}`)
        // @ts-expect-error `{id}` belongs to the nested group, not this one
        void ctx.params.id
      })
      sites.group({ prefix: 'devices/{id}' }, (devices) => {
        devices.on('telemetry/{channel}', (ctx) => {
          const site: string = ctx.params.site
          const id: string = ctx.params.id
          const channel: string = ctx.params.channel
          seen.push(`${site} ${id} ${channel}`)
          // @ts-expect-error a prefix's names are typed exactly too
          void ctx.params.ide
        })
      })
      sites.group({ middleware: [] }, (plain) => {
        plain.on('bye', (ctx) => {
          seen.push(`bye ${ctx.params.site}`)
          // @ts-expect-error a group without a prefix adds no names
          void ctx.params.id
        })
      })
    })
    for (const topic of ['sites/s1/hello', 'sites/s1/devices/d9/telemetry/temp', 'sites/s2/bye']) {
      const match = router.match(topic)!
      await match.route.run(fakeContext(match.params))
    }
    assert.deepEqual(seen, ['hello s1', 's1 d9 temp', 'bye s2'])
  })

  it('leaves a pattern built at run time open: its names are known only then', () => {
    const router = new Router()
    const pattern: string = ['devices', '{id}', 'status'].join('/')
    router.on(pattern, (ctx) => {
      const id: string | undefined = ctx.params['id']
      return id
    })
    assert.deepEqual(router.match('devices/4/status')?.params, { id: '4' })
  })
})

/** The one part of a context these handlers read; the dispatcher builds real ones. */
function fakeContext(params: Readonly<Record<string, string>>): MessageContext {
  return { params } as MessageContext
}
