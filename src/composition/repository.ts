import { inject, injectable } from '../routemq/container.js'
import { KYSELY } from '../tokens.js'

/**
 * Marks a class as a repository the container builds: resolve it from
 * `ctx.container` (or the application's container) and its constructor
 * receives what it asks for, the Kysely instance through `@InjectKysely()`.
 *
 * @example
 * @Repository()
 * class Devices {
 *   constructor(@InjectKysely() private readonly db: Kysely<Database>) {}
 *   @ReadOnly() find(id: string) { return this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst() }
 * }
 * router.on('devices/{id}/config/get', (ctx) => ctx.container.resolve(Devices).find(ctx.params.id))
 */
export function Repository(): <T>(target: new (...args: any[]) => T) => void {
  return injectable()
}

/** The constructor parameter that receives the Kysely instance `LoadBalancingModule` built over the replica pool. */
export function InjectKysely(): ParameterDecorator {
  return inject(KYSELY) as ParameterDecorator
}
