import { describeError, errorLine, type LoggedError } from './logged-error.js'
import { isPinoLike, pinoLogger } from './pino-logger.js'
import { checkOptions, isFunction, oneOf, type OptionShape } from './option-shape.js'

/** Structured fields attached to a log line. Never put secrets here. */
export type LogFields = Readonly<Record<string, unknown>>

/**
 * The logging seam, `(message, fields)`: use `ConsoleLogger`, a pino logger
 * (adapted by `pinoLogger`, or recognised where a `Logger` is expected), or
 * any object with these four methods (winston's logger is one).
 *
 * @example
 * const logger: Logger = { debug() {}, info: console.log, warn: console.warn, error: console.error }
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** How `ConsoleLogger` writes an entry. */
export type LogFormat = 'text' | 'json'

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

/** Options of `ConsoleLogger`. */
export interface ConsoleLoggerOptions {
  /** Lowest level written. Default `'info'`. */
  readonly level?: LogLevel
  /**
   * `'text'` (default): `time LEVEL message key=value…`, an error as
   * `Name: message ← cause…`, and at ERROR its stack on indented lines after.
   * `'json'`: one JSON object per line, `{ time, level, msg, ...fields }`,
   * an error as `{ name, message, stack, code, cause, errors }`.
   */
  readonly format?: LogFormat
  /** Where entries go, one call each. Default `process.stderr`. */
  readonly write?: (line: string) => void
}

// A level it does not know ('warning') would otherwise write nothing at all.
const CONSOLE_LOGGER_OPTIONS_SHAPE: OptionShape<ConsoleLoggerOptions> = {
  level: oneOf(Object.keys(RANK)),
  format: oneOf(['text', 'json']),
  write: isFunction('a function (line) => void'),
}

/** Keys of a JSON entry a field may not take; such a field is written as `_time`, `_level`, `_msg`. */
const RESERVED = new Set(['time', 'level', 'msg'])

/**
 * Writes one entry per call: as text (time, level, message, then
 * `key=value` fields) or as JSON. Errors in fields are described with their
 * `cause` chain and scrubbed of secrets (see `describeError`).
 *
 * @example
 * const logger = new ConsoleLogger({ level: 'debug' })
 * logger.warn('no route', { topic: 'a/b' }) // 2026-11-25T10:00:00.000Z WARN no route topic=a/b
 * new ConsoleLogger({ format: 'json' }).warn('no route', { topic: 'a/b' })
 * // {"time":"2026-11-25T10:00:00.000Z","level":"warn","msg":"no route","topic":"a/b"}
 */
export class ConsoleLogger implements Logger {
  readonly #rank: number
  readonly #json: boolean
  readonly #write: (line: string) => void

  constructor(options: ConsoleLoggerOptions = {}) {
    checkOptions(options, CONSOLE_LOGGER_OPTIONS_SHAPE, 'logger')
    this.#rank = RANK[options.level ?? 'info']
    this.#json = options.format === 'json'
    this.#write = options.write ?? ((line) => process.stderr.write(`${line}\n`))
  }

  debug(message: string, fields?: LogFields): void {
    this.#log('debug', message, fields)
  }

  info(message: string, fields?: LogFields): void {
    this.#log('info', message, fields)
  }

  warn(message: string, fields?: LogFields): void {
    this.#log('warn', message, fields)
  }

  error(message: string, fields?: LogFields): void {
    this.#log('error', message, fields)
  }

  #log(level: LogLevel, message: string, fields: LogFields | undefined): void {
    if (RANK[level] < this.#rank) return
    const time = new Date().toISOString()
    this.#write(this.#json ? jsonEntry(time, level, message, fields) : textEntry(time, level, message, fields))
  }
}

function textEntry(time: string, level: LogLevel, message: string, fields: LogFields | undefined): string {
  let line = `${time} ${level.toUpperCase()} ${message}`
  const stacks: string[] = []
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value instanceof Error) {
        const described = describeError(value)
        line += ` ${key}=${JSON.stringify(errorLine(described))}`
        // An ERROR is something to fix: where it came from matters. A WARN's stack (a refused connection) is noise.
        if (level === 'error' && described.stack) stacks.push(indentStack(described))
      } else {
        line += ` ${key}=${formatField(value)}`
      }
    }
  }
  return stacks.length > 0 ? `${line}\n${stacks.join('\n')}` : line
}

function indentStack(error: LoggedError): string {
  let text = error.stack!.replace(/^/gm, '    ')
  if (typeof error.cause === 'object' && error.cause.stack) text += `\n    caused by:\n${indentStack(error.cause)}`
  return text
}

function formatField(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value
  try {
    return JSON.stringify(value, jsonValue) ?? String(value)
  } catch {
    // Circular structures: a log line must never throw.
    return JSON.stringify(String(value))
  }
}

function jsonEntry(time: string, level: LogLevel, message: string, fields: LogFields | undefined): string {
  const entry: Record<string, unknown> = { time, level, msg: message }
  if (fields) {
    for (const [key, value] of Object.entries(fields)) entry[RESERVED.has(key) ? `_${key}` : key] = value
  }
  try {
    return JSON.stringify(entry, jsonValue)
  } catch {
    return JSON.stringify(entry, acyclic())
  }
}

// Errors anywhere in a field (an array of failures) are described; BigInts (WAL positions) become strings.
function jsonValue(_key: string, value: unknown): unknown {
  if (value instanceof Error) return describeError(value)
  if (typeof value === 'bigint') return value.toString()
  return value
}

function acyclic(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>()
  return (key, value) => {
    const plain = jsonValue(key, value)
    if (typeof plain === 'object' && plain !== null) {
      if (seen.has(plain)) return '[Circular]'
      seen.add(plain)
    }
    return plain
  }
}

/** Longest string field passed on whole; a topic may be 65 535 bytes and a log line should not. */
export const MAX_LOGGED_FIELD_CHARS = 512

/**
 * Wraps a logger so that a failing logger never breaks message handling or
 * an event handler: its errors are swallowed. A pino logger is adapted
 * with `pinoLogger` first. String fields longer than
 * `MAX_LOGGED_FIELD_CHARS` are cut, saying how much was left out.
 *
 * @example
 * const logger = safeLogger(userLogger)
 */
export function safeLogger(given: Logger): Logger {
  // pino takes (fields, message): called as a Logger, it would drop every field.
  const logger = isPinoLike(given) ? pinoLogger(given) : given
  const guard =
    (write: (message: string, fields?: LogFields) => void) =>
    (message: string, fields?: LogFields): void => {
      try {
        write.call(logger, message, fields && cutLongFields(fields))
      } catch {
        // Nowhere left to report it.
      }
    }
  // eslint-disable-next-line @typescript-eslint/unbound-method -- guard calls each method with logger as `this`
  return { debug: guard(logger.debug), info: guard(logger.info), warn: guard(logger.warn), error: guard(logger.error) }
}

function cutLongFields(fields: LogFields): LogFields {
  let cut: Record<string, unknown> | undefined
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string' && value.length > MAX_LOGGED_FIELD_CHARS) {
      cut ??= { ...fields }
      // Never half a surrogate pair.
      const end = /[\uD800-\uDBFF]/.test(value[MAX_LOGGED_FIELD_CHARS - 1]!) ? MAX_LOGGED_FIELD_CHARS - 1 : MAX_LOGGED_FIELD_CHARS
      cut[key] = `${value.slice(0, end)}… (${value.length - end} more characters)`
    }
  }
  return cut ?? fields
}

/** A logger that writes nothing, for tests and benchmarks. */
export const silentLogger: Logger = Object.freeze({ debug() {}, info() {}, warn() {}, error() {} })
