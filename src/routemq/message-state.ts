/**
 * What middleware attaches to a message for the ones after it and the
 * handler. Each plugin adds its own optional field by declaration merging,
 * so `ctx.state.geo` is typed wherever the geo plugin is imported.
 *
 * @example
 * declare module './message-state.js' {
 *   interface MessageState { tenant?: string }
 * }
 * const tagTenant: MiddlewareFunction = (ctx, next) => { ctx.state.tenant = 'acme'; return next(ctx) }
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- empty on purpose: apps and plugins add their fields by declaration merging
export interface MessageState {}
