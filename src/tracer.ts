import { SpanStatusCode, trace, type Span } from '@opentelemetry/api'
import { TRACER_NAME } from './routemq/plugin-api.js'

/**
 * The tracer of the plugins' spans (database queries, failovers), in the
 * kernel's instrumentation scope: the API's proxy tracer, a no-op until the
 * application registers an OpenTelemetry SDK.
 */
export const tracer = trace.getTracer(TRACER_NAME)

/**
 * Marks `span` failed: an exception event (type, message, stack), an error
 * status and `error.type` (`type` when the failure has a better name, such as
 * a SQLSTATE). The kernel keeps its own copy (it imports nothing of the
 * project); messages of this package's errors carry no secrets.
 *
 * @example
 * recordSpanFailure(span, error, (error as { code?: string }).code)
 */
export function recordSpanFailure(span: Span, error: unknown, type?: string): void {
  if (!span.isRecording()) return
  if (error instanceof Error) {
    span.recordException(error)
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
  } else {
    span.recordException(String(error))
    span.setStatus({ code: SpanStatusCode.ERROR })
  }
  span.setAttribute('error.type', type ?? (error instanceof Error ? error.name : '_OTHER'))
}
