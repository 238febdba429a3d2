import { checkOptions, isFunction, oneOf, type OptionShape } from './option-shape.js'

/** Structured fields attached to a log line. Never put secrets here. */
export type LogFields = Readonly<Record<string, unknown>>

/**
 * The logging seam: bring your own (pino, winston) by adapting these four
 * methods, or use `ConsoleLogger`.
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

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 }

/** Options of `ConsoleLogger`. */
export interface ConsoleLoggerOptions {
  /** Lowest level written. Default `'info'`. */
  readonly level?: LogLevel
  /** Where lines go. Default `process.stderr`. */
  readonly write?: (line: string) => void
}

// A level it does not know ('warning') would otherwise write nothing at all.
const CONSOLE_LOGGER_OPTIONS_SHAPE: OptionShape<ConsoleLoggerOptions> = {
  level: oneOf(Object.keys(RANK)),
  write: isFunction('a function (line) => void'),
}

/**
 * Writes one line per entry: time, level, message, then `key=value` fields.
 *
 * @example
 * const logger = new ConsoleLogger({ level: 'debug' })
 * logger.warn('no route', { topic: 'a/b' }) // 2026-11-25T10:00:00.000Z WARN no route topic=a/b
 */
export class ConsoleLogger implements Logger {
  readonly #rank: number
  readonly #write: (line: string) => void

  constructor(options: ConsoleLoggerOptions = {}) {
    checkOptions(options, CONSOLE_LOGGER_OPTIONS_SHAPE, 'logger')
    this.#rank = RANK[options.level ?? 'info']
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
    let line = `${new Date().toISOString()} ${level.toUpperCase()} ${message}`
    if (fields) {
      for (const [key, value] of Object.entries(fields)) line += ` ${key}=${formatField(value)}`
    }
    this.#write(line)
  }
}

function formatField(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(`${value.name}: ${value.message}`)
  if (typeof value === 'string') return /[\s"=]/.test(value) ? JSON.stringify(value) : value
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    // Circular structures and BigInts: a log line must never throw.
    return JSON.stringify(String(value))
  }
}

/** Longest string field passed on whole; a topic may be 65 535 bytes and a log line should not. */
export const MAX_LOGGED_FIELD_CHARS = 512

/**
 * Wraps a logger so that a failing logger never breaks message handling or
 * an event handler: its errors are swallowed. String fields longer than
 * `MAX_LOGGED_FIELD_CHARS` are cut, saying how much was left out.
 *
 * @example
 * const logger = safeLogger(userLogger)
 */
export function safeLogger(logger: Logger): Logger {
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
