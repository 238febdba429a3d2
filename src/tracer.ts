import { trace } from '@opentelemetry/api'
import { TRACER_NAME } from './routemq/plugin-api.js'

export { recordSpanFailure } from './routemq/plugin-api.js'

/**
 * The tracer of the plugins' spans (database queries, failovers), in the
 * kernel's instrumentation scope: the API's proxy tracer, a no-op until the
 * application registers an OpenTelemetry SDK.
 */
export const tracer = trace.getTracer(TRACER_NAME)
