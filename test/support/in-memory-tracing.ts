import { context, propagation, trace, type Attributes, type Context, type Link, type SpanKind } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  AlwaysOnSampler, BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SamplingDecision, SimpleSpanProcessor,
  type ReadableSpan, type Sampler, type SamplingResult, type SpanProcessor,
} from '@opentelemetry/sdk-trace-base'

/**
 * Records only between `start()` and `stop()`: the provider is registered once
 * per process (the package's tracer keeps the provider it first finds, as an
 * application's would), and the other test files must not pay for it.
 */
class SwitchedSampler implements Sampler {
  on = false
  readonly #inner = new ParentBasedSampler({ root: new AlwaysOnSampler() })

  shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    if (!this.on) return { decision: SamplingDecision.NOT_RECORD }
    return this.#inner.shouldSample(ctx, traceId, name, kind, attributes, links)
  }

  toString(): string {
    return 'SwitchedSampler'
  }
}

/** Wakes those waiting for a span once it ended (and the in-memory exporter has it). */
class EndWatch implements SpanProcessor {
  readonly waiters = new Set<() => void>()
  onStart(): void {}
  onEnd(): void {
    for (const wake of [...this.waiters]) wake()
  }
  forceFlush(): Promise<void> {
    return Promise.resolve()
  }
  shutdown(): Promise<void> {
    return Promise.resolve()
  }
}

interface Registered {
  readonly sampler: SwitchedSampler
  readonly exporter: InMemorySpanExporter
  readonly watch: EndWatch
  readonly contextManager: AsyncLocalStorageContextManager
  readonly propagator: W3CTraceContextPropagator
}

let registered: Registered | undefined

function register(): Registered {
  if (registered) return registered
  const sampler = new SwitchedSampler()
  const exporter = new InMemorySpanExporter()
  const watch = new EndWatch()
  const provider = new BasicTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(exporter), watch] })
  trace.setGlobalTracerProvider(provider)
  registered = { sampler, exporter, watch, contextManager: new AsyncLocalStorageContextManager(), propagator: new W3CTraceContextPropagator() }
  return registered
}

/**
 * The SDK's in-memory exporter, recording spans from `start()` to `stop()`.
 *
 * @example
 * before(() => spans.start()); after(() => spans.stop())
 * const consumer = await spans.waitFor((s) => s.name === 'process t/{n}')
 */
export const spans = {
  start(): void {
    const { sampler, exporter, contextManager, propagator } = register()
    exporter.reset()
    sampler.on = true
    // The rest of the setup an application makes: the async-hooks context manager, the W3C propagator.
    context.setGlobalContextManager(contextManager.enable())
    propagation.setGlobalPropagator(propagator)
  },
  /** Stops recording, and takes the context manager and propagator away: other tests' publishes get no traceparent. */
  stop(): void {
    if (!registered) return
    registered.sampler.on = false
    registered.exporter.reset()
    context.disable()
    propagation.disable()
  },
  /** Spans ended since `start()` or the last `reset()`. */
  finished(): ReadableSpan[] {
    return registered?.exporter.getFinishedSpans() ?? []
  },
  reset(): void {
    registered?.exporter.reset()
  },
  /** The first ended span `match` accepts, once there is one; fails after `timeoutMs`. */
  waitFor(match: (span: ReadableSpan) => boolean, timeoutMs = 20_000): Promise<ReadableSpan> {
    const { watch, exporter } = register()
    const found = exporter.getFinishedSpans().find(match)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        watch.waiters.delete(check)
        reject(new Error(`no matching span ended within ${timeoutMs} ms; ended: ${exporter.getFinishedSpans().map((s) => s.name).join(', ') || 'none'}`))
      }, timeoutMs)
      const check = (): void => {
        const span = exporter.getFinishedSpans().find(match)
        if (!span) return
        watch.waiters.delete(check)
        clearTimeout(timer)
        resolve(span)
      }
      watch.waiters.add(check)
    })
  },
}

/** The span whose id is `span`'s parent, among `all`. */
export function parentOf(span: ReadableSpan, all: readonly ReadableSpan[]): ReadableSpan | undefined {
  const parentId = span.parentSpanContext?.spanId
  return all.find((candidate) => candidate.spanContext().spanId === parentId)
}

/** A W3C traceparent for `traceId`/`spanId`, sampled unless told otherwise. */
export function traceparent(traceId: string, spanId: string, sampled = true): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`
}
