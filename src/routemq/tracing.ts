import {
  context, INVALID_SPAN_CONTEXT, isSpanContextValid, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace,
  type Attributes, type Context, type Span, type SpanOptions, type TextMapGetter, type TextMapSetter,
} from '@opentelemetry/api'
import type { InboundMessage, PublishOptions, UserProperties } from './mqtt-transport.js'
import type { Route } from './route.js'
import { describeError } from './logged-error.js'
import { scrubSecrets } from './scrub-secrets.js'

/**
 * The instrumentation scope of every span this package makes (messages,
 * publishes, database queries, failovers): what to filter or sample by.
 *
 * @example
 * // in a span processor of the application's SDK
 * onEnd(span) { if (span.instrumentationScope.name === TRACER_NAME) mqttSpans.push(span) }
 */
export const TRACER_NAME = 'routemq-load-balancing'

// The API's proxy tracer: a no-op until the application registers an SDK, then
// it delegates to it, whenever that happens (before or after this import).
const tracer = trace.getTracer(TRACER_NAME)

/** Reads W3C trace context (`traceparent`, `tracestate`) from MQTT 5 user properties. */
const userPropertyGetter: TextMapGetter<UserProperties | undefined> = {
  keys: (carrier) => (carrier ? Object.keys(carrier) : []),
  get: (carrier, key) => carrier?.[key] as string | string[] | undefined,
}

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value
  },
}

interface RouteSpan {
  readonly name: string
  readonly options: SpanOptions
}

/** Message spans recording now: while there is none, a layer does not even look for one (6 layers of a route cost 150 ns otherwise). */
let recordingMessages = 0

/** Per route, the span name and the attributes known before a message arrives: made once, shared by every message. */
const routeSpans = new WeakMap<Route, RouteSpan>()

function routeSpan(route: Route): RouteSpan {
  let made = routeSpans.get(route)
  if (!made) {
    const attributes: Attributes = {
      'messaging.system': 'mqtt',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.template': route.pattern,
    }
    if (route.shared !== undefined) attributes['messaging.consumer.group.name'] = route.shared
    if (route.name !== undefined) attributes['routemq.route.name'] = route.name
    // Named as the messaging conventions say, `{operation} {destination}`, with the route's
    // pattern as the destination: a topic holds device ids, too many names for a span.
    made = { name: `process ${route.pattern}`, options: { kind: SpanKind.CONSUMER, attributes: Object.freeze(attributes) } }
    routeSpans.set(route, made)
  }
  return made
}

/**
 * The CONSUMER span of one message on its way through its route, the child
 * of the trace context its sender put in the user properties (read through
 * the globally registered propagator), so a device's trace goes on through
 * this application. Without a registered SDK every call is a no-op.
 */
export class MessageTrace {
  readonly #span: Span
  /** Undefined when there is nothing to carry (no SDK, no incoming trace): then `run` costs a call. */
  readonly #context: Context | undefined
  readonly #recording: boolean

  constructor(message: InboundMessage, route: Route) {
    let parent: Context
    let span: Span
    try {
      // The sender's context, or none: never whatever happened to be active when the transport delivered it.
      parent = propagation.extract(ROOT_CONTEXT, message.properties?.userProperties, userPropertyGetter)
      const { name, options } = routeSpan(route)
      span = tracer.startSpan(name, options, parent)
    } catch {
      // The application's propagator or SDK threw: the message goes on untraced rather than unhandled.
      parent = ROOT_CONTEXT
      span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT)
    }
    this.#span = span
    this.#recording = span.isRecording()
    if (this.#recording) {
      recordingMessages++
      span.setAttributes({
        'messaging.destination.name': message.topic,
        'messaging.message.body.size': message.payload.length,
        'routemq.mqtt.qos': message.qos,
        'routemq.broker': message.broker,
      })
      if (message.dup) span.setAttribute('routemq.mqtt.dup', true)
    }
    this.#context = carriesTrace(span) ? trace.setSpan(parent, span) : undefined
  }

  /** Runs `fn` with the message's span active: what it starts (queries, publishes, middleware) are its children. */
  run<R>(fn: () => R): R {
    return this.#context ? context.with(this.#context, fn) : fn()
  }

  /** The middleware or handler failed, or the body could not be decoded. */
  failed(error: unknown): void {
    fail(this.#span, error)
  }

  /** Ends the span; never throws (an SDK's span processor that throws costs the span, not the message). */
  end(): void {
    if (this.#recording) recordingMessages--
    try {
      this.#span.end()
    } catch {
      // The span is lost; the message was settled already.
    }
  }
}

const STEP_OPTIONS: SpanOptions = Object.freeze({ kind: SpanKind.INTERNAL })

/**
 * Wraps one layer of a route (a middleware, or the handler) so that, while
 * its message is traced, it runs in a child span of its own named `name`:
 * the layers nest as they call each other, so each span's own time is the
 * time spent in that layer (a health gate holding a message shows as a long
 * middleware span). Outside a recording span it only calls `run`.
 */
export function tracedLayer<C>(name: string, run: (ctx: C) => unknown): (ctx: C) => unknown {
  return (ctx) => {
    if (recordingMessages === 0) return run(ctx)
    const active = context.active()
    if (!trace.getSpan(active)?.isRecording()) return run(ctx)
    let span: Span
    try {
      span = tracer.startSpan(name, STEP_OPTIONS, active)
    } catch {
      // The application's SDK threw: this layer runs untraced, never fails because of it.
      return run(ctx)
    }
    let result: unknown
    try {
      result = context.with(trace.setSpan(active, span), run, undefined, ctx)
    } catch (error) {
      fail(span, error)
      span.end()
      throw error
    }
    if (!(result instanceof Promise)) {
      span.end()
      return result
    }
    // The span ends on a side chain and the layer's own promise goes back: a middleware may call
    // next() without awaiting it, and a new promise rejected with nobody listening would crash Node.
    result.then(
      () => endQuietly(span),
      (error: unknown) => {
        fail(span, error)
        endQuietly(span)
      },
    )
    return result
  }
}

const PUBLISH_OPTIONS: SpanOptions = Object.freeze({
  kind: SpanKind.PRODUCER,
  attributes: Object.freeze({ 'messaging.system': 'mqtt', 'messaging.operation.type': 'send', 'messaging.operation.name': 'publish' }),
})

/**
 * Runs `send` inside a PRODUCER span, a child of the active context (the
 * message being handled, when a handler publishes), and gives it the user
 * properties that carry this span's trace context (`traceparent`,
 * `tracestate`, as the registered propagator writes them), or `undefined`
 * when the propagator writes none.
 */
export async function tracePublish(
  topic: string,
  options: PublishOptions | undefined,
  body: string | Uint8Array,
  send: (traceContext: Readonly<Record<string, string>> | undefined) => Promise<void>,
): Promise<void> {
  const active = context.active()
  // A topic names devices: too many names for spans, so the topic is an attribute only.
  const span = tracer.startSpan('publish', PUBLISH_OPTIONS, active)
  if (span.isRecording()) {
    span.setAttributes({ 'messaging.destination.name': topic, 'messaging.message.body.size': typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength, 'routemq.mqtt.qos': options?.qos ?? 0 })
    if (options?.retain) span.setAttribute('routemq.mqtt.retain', true)
  }
  const inner = carriesTrace(span) ? trace.setSpan(active, span) : active
  try {
    await context.with(inner, send, undefined, traceContextOf(inner))
  } catch (error) {
    fail(span, error)
    throw error
  } finally {
    span.end()
  }
}

/**
 * Whether a span is worth making the active one: it records, or it carries a
 * trace on without recording (an unsampled one, or an incoming context with
 * the API alone). The API's no-op span carries nothing.
 */
function carriesTrace(span: Span): boolean {
  if (span.isRecording()) return true
  const spanContext = span.spanContext()
  // The identity test first: the validity test runs two regular expressions.
  return spanContext !== INVALID_SPAN_CONTEXT && isSpanContextValid(spanContext)
}

function traceContextOf(ctx: Context): Record<string, string> | undefined {
  const carrier: Record<string, string> = {}
  propagation.inject(ctx, carrier, recordSetter)
  for (const _ in carrier) return carrier
  return undefined
}

/**
 * Marks `span` failed with `error` as an exception event (type, message,
 * stack, scrubbed of secrets as log lines are), an error status and
 * `error.type` (`type` when the failure has a better name, such as a
 * SQLSTATE). Never throws: an SDK that does costs the record, not the caller.
 *
 * @example
 * recordSpanFailure(span, error, (error as { code?: string }).code)
 */
export function recordSpanFailure(span: Span, error: unknown, type?: string): void {
  try {
    if (!span.isRecording()) return
    if (error instanceof Error) {
      const { name, message, stack } = describeError(error)
      span.recordException(stack === undefined ? { name, message } : { name, message, stack })
      span.setStatus({ code: SpanStatusCode.ERROR, message })
    } else {
      span.recordException(scrubSecrets(String(error)))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.setAttribute('error.type', type ?? (error instanceof Error ? error.name : '_OTHER'))
  } catch {
    // The span keeps what it had.
  }
}

const fail = recordSpanFailure

/** Ends `span`; an SDK's span processor that throws loses the span, never fails the caller. */
function endQuietly(span: Span): void {
  try {
    span.end()
  } catch {
    // Nothing to do: the span is lost.
  }
}
