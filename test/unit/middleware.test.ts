import assert from 'node:assert/strict'
import { composeMiddleware, MessageContext, type Middleware, type Next } from '../../src/index.js'
import { rootContainerForTests } from '../support/inbound-message.js'

describe('middleware', () => {
  it('runs as an onion: outer before and after inner, handler in the middle', async () => {
    const trace: string[] = []
    const layer = (name: string) => async (ctx: MessageContext, next: Next) => {
      trace.push(`${name}>`)
      const result = await next(ctx)
      trace.push(`<${name}`)
      return result
    }
    const run = composeMiddleware([layer('group'), layer('route')], () => {
      trace.push('handler')
      return 'done'
    })
    assert.equal(await run(context()), 'done')
    assert.deepEqual(trace, ['group>', 'route>', 'handler', '<route', '<group'])
  })

  it('accepts class middleware and passes state down the chain', async () => {
    class Tenant implements Middleware {
      handle(ctx: MessageContext, next: Next) {
        ;(ctx.state as Record<string, unknown>).tenant = 'acme'
        return next(ctx)
      }
    }
    let seen: unknown
    const run = composeMiddleware([new Tenant()], (ctx) => {
      seen = (ctx.state as Record<string, unknown>).tenant
    })
    await run(context())
    assert.equal(seen, 'acme')
  })

  it('short-circuits when a middleware does not call next', async () => {
    let handled = false
    const run = composeMiddleware([() => 'blocked', () => assert.fail('must not run')], () => {
      handled = true
    })
    assert.equal(await run(context()), 'blocked')
    assert.equal(handled, false)
  })

  it('turns a synchronous throw anywhere into a rejection', async () => {
    const run = composeMiddleware([(ctx, next) => next(ctx)], () => {
      throw new Error('boom')
    })
    await assert.rejects(run(context()), /boom/)
    const early = composeMiddleware([() => { throw new Error('early') }], () => undefined)
    await assert.rejects(early(context()), /early/)
  })

  it('lets outer middleware catch what inner layers throw', async () => {
    const run = composeMiddleware(
      [async (ctx, next) => { try { return await next(ctx) } catch { return 'recovered' } }],
      async () => { throw new Error('handler failed') },
    )
    assert.equal(await run(context()), 'recovered')
  })
})

function context(): MessageContext {
  return new MessageContext({
    topic: 't', params: {}, payload: undefined, raw: Buffer.alloc(0), qos: 0, retain: false, dup: false,
    properties: undefined, broker: 'test',
    route: { pattern: 't', subscription: 't', name: undefined },
    container: rootContainerForTests(), publish: async () => {},
  })
}
