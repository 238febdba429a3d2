import { RouteMqError } from './route-mq-error.js'

/**
 * A message on a route that expects JSON carried a body that is not JSON. Only
 * that message fails; the route keeps receiving.
 *
 * @example
 * router.on('devices/{id}/telemetry', handle, { payload: 'json' })
 * // a body of `{"t": 21.` is logged and counted as malformed, never handled
 */
export class MalformedPayloadError extends RouteMqError {
  readonly code = 'MALFORMED_PAYLOAD'

  constructor(
    readonly topic: string,
    cause: unknown,
  ) {
    super(
      `Message on "${topic}" is not valid JSON (${cause instanceof Error ? cause.message : String(cause)}). ` +
        "Fix the publisher, or declare the route with { payload: 'auto' } or 'buffer' to accept non-JSON bodies.",
      { cause },
    )
  }
}

export function isMalformedPayloadError(error: unknown): error is MalformedPayloadError {
  return error instanceof MalformedPayloadError
}
