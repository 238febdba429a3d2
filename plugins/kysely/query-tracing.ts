import { context, SpanKind, type Attributes, type Context, type Span, type SpanOptions } from '@opentelemetry/api'
import { recordSpanFailure, tracer } from '../../src/tracer.js'

/** Where a server is and what it is in its pool, for the spans of its queries. */
export interface TracedServer {
  /** The pool's name for it (`primary`, `replica-1`, ...). */
  readonly id: string
  readonly host: string
  readonly port: number
  readonly database: string
  readonly role: 'primary' | 'replica'
}

/**
 * CLIENT spans for the queries of one server, with the attributes of the
 * OpenTelemetry database conventions (`db.system.name`, `db.namespace`,
 * `db.operation.name`, `server.address`, `server.port`) and the server's
 * role in the pool. Never the query's text or parameters: they may hold
 * personal data or secrets.
 *
 * @example
 * const tracing = new QueryTracing({ id: 'replica-1', host: '10.0.0.7', port: 5432, database: 'app', role: 'replica' })
 * const span = tracing.start(sql, tracing.context())
 * tracing.end(span, error)
 */
export class QueryTracing {
  readonly #options: SpanOptions

  constructor(server: TracedServer) {
    const attributes: Attributes = {
      'db.system.name': 'postgresql',
      // The name before the conventions' 1.26 rename, still what some backends draw database nodes from.
      'db.system': 'postgresql',
      'db.namespace': server.database,
      'server.address': server.host,
      'server.port': server.port,
      'routemq.db.role': server.role,
      'routemq.db.server': server.id,
    }
    this.#options = Object.freeze({ kind: SpanKind.CLIENT, attributes: Object.freeze(attributes) })
  }

  /** The caller's context, to take before a callback that may run in another one (a connection handed over by pg's pool). */
  context(): Context {
    return context.active()
  }

  /** A span for `sql`, sent now, as a child of `parent`. */
  start(sql: string, parent: Context): Span {
    const span = tracer.startSpan('postgresql', this.#options, parent)
    if (span.isRecording()) {
      const operation = operationOf(sql)
      if (operation !== undefined) {
        span.updateName(operation)
        span.setAttribute('db.operation.name', operation)
      }
    }
    return span
  }

  /** Ends `span`, failed when `error` is set (`db.response.status_code` is its SQLSTATE, if it has one). */
  end(span: Span, error: unknown): void {
    if (error !== undefined) {
      const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
      const sqlState = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined
      if (sqlState !== undefined && span.isRecording()) span.setAttribute('db.response.status_code', sqlState)
      recordSpanFailure(span, error, sqlState)
    }
    span.end()
  }
}

/**
 * The statement's first keyword, upper-cased (`SELECT`, `INSERT`, `COMMIT`):
 * the conventions' operation name when it is taken from the text.
 *
 * @example
 * operationOf('  select 1') // 'SELECT'
 */
export function operationOf(sql: string): string | undefined {
  const match = /^\s*([A-Za-z]+)/.exec(sql)
  return match ? match[1]!.toUpperCase() : undefined
}
