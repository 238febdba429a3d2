import { describeError } from './logged-error.js'
import type { LogFields, Logger } from './logger.js'

/**
 * The part of a pino logger the adapter uses: pino takes the fields first,
 * the message second. Structural, so this package never imports pino.
 */
export interface PinoLike {
  debug(fields: object, message: string): void
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
  error(fields: object, message: string): void
}

/**
 * Adapts a pino logger (or a child of one) to `Logger`: `(message, fields)`
 * becomes `(fields, message)`, and an `Error` in the fields is passed as
 * `describeError` describes it (name, message, stack, code, `cause` chain,
 * scrubbed of secrets) rather than to pino's `err` serializer, which copies
 * every property of the error. A pino logger given directly where a
 * `Logger` is expected is adapted the same way (see `safeLogger`).
 *
 * @example
 * import pino from 'pino'
 * const app = await Application.create({ router, logger: pinoLogger(pino({ level: 'info' })) })
 */
export function pinoLogger(pino: PinoLike): Logger {
  if (typeof pino !== 'object' || pino === null || !(['debug', 'info', 'warn', 'error'] as const).every((level) => typeof pino[level] === 'function')) {
    throw new TypeError('pinoLogger(pino) takes a pino logger, such as pino() or pino().child({ component: "routemq" })')
  }
  return {
    debug: (message, fields) => pino.debug(pinoFields(fields), message),
    info: (message, fields) => pino.info(pinoFields(fields), message),
    warn: (message, fields) => pino.warn(pinoFields(fields), message),
    error: (message, fields) => pino.error(pinoFields(fields), message),
  }
}

/**
 * Whether `logger` is a pino logger: it logs `(fields, message)`, so
 * calling it as a `Logger` would drop every field.
 */
export function isPinoLike(logger: object): logger is PinoLike {
  const candidate = logger as { child?: unknown; bindings?: unknown; levels?: { values?: unknown } }
  return typeof candidate.child === 'function' && typeof candidate.bindings === 'function' && typeof candidate.levels?.values === 'object'
}

function pinoFields(fields: LogFields | undefined): object {
  if (!fields) return {}
  let copy: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      copy ??= { ...fields }
      copy[key] = describeError(value)
    }
  }
  return copy ?? fields
}
