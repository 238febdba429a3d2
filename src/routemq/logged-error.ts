import { scrubSecrets } from './scrub-secrets.js'

/** An error as a log entry carries it: scrubbed of secrets, with its causes. */
export interface LoggedError {
  readonly name: string
  readonly message: string
  readonly stack?: string
  /** A string or number `code` (`ECONNREFUSED`, a SQLSTATE, a reason code). */
  readonly code?: string | number
  /** `error.cause`, described the same way; a cause that is no `Error` is scrubbed text. */
  readonly cause?: LoggedError | string
  /** The errors of an `AggregateError` (pg's connect to `localhost` fails once per address). */
  readonly errors?: readonly (LoggedError | string)[]
}

// A cause chain that loops, or one built on purpose to be deep, must not make a log line unbounded.
const MAX_DEPTH = 8
const MAX_AGGREGATED = 10

/**
 * Describes an error for a log entry: name, message, stack, code, and its
 * `cause` chain and aggregated errors, recursively. Only these are taken,
 * never other own properties (a pg error's query parameters, a client's
 * options), and every text is scrubbed of URLs' user info, passwords and
 * tokens.
 *
 * @example
 * describeError(new Error('write failed', { cause: new Error('connect ECONNREFUSED 10.0.0.5:5432') }))
 * // { name: 'Error', message: 'write failed', stack: '…', cause: { name: 'Error', message: 'connect ECONNREFUSED 10.0.0.5:5432', … } }
 */
export function describeError(error: Error): LoggedError {
  return describe(error, 0, new Set())
}

function describe(error: Error, depth: number, seen: Set<unknown>): LoggedError {
  seen.add(error)
  const code = (error as { code?: unknown }).code
  const described: { -readonly [K in keyof LoggedError]: LoggedError[K] } = {
    name: textOf(() => error.name) || 'Error',
    message: scrubSecrets(textOf(() => error.message)),
  }
  const stack = textOf(() => error.stack)
  if (stack) described.stack = scrubStack(stack)
  if (typeof code === 'string' || typeof code === 'number') described.code = typeof code === 'string' ? scrubSecrets(code) : code
  if (depth < MAX_DEPTH) {
    const cause = (error as { cause?: unknown }).cause
    if (cause !== undefined && !seen.has(cause)) described.cause = describeValue(cause, depth + 1, seen)
    if (error instanceof AggregateError && Array.isArray(error.errors) && error.errors.length > 0) {
      described.errors = error.errors.slice(0, MAX_AGGREGATED).filter((e) => !seen.has(e)).map((e: unknown) => describeValue(e, depth + 1, seen))
    }
  }
  return described
}

function describeValue(value: unknown, depth: number, seen: Set<unknown>): LoggedError | string {
  return value instanceof Error ? describe(value, depth, seen) : scrubSecrets(textOf(() => String(value)))
}

/**
 * One line for a text log: `Name: message`, then each cause as
 * `← Name: message`; no stack.
 *
 * @example
 * errorLine(new Error('write failed', { cause: new Error('connect ECONNREFUSED 10.0.0.5:5432') }))
 * // 'Error: write failed ← Error: connect ECONNREFUSED 10.0.0.5:5432'
 */
export function errorLine(error: LoggedError | string): string {
  if (typeof error === 'string') return error
  let line = `${error.name}: ${error.message}`
  if (error.errors) line += ` [${error.errors.map(errorLine).join('; ')}]`
  if (error.cause !== undefined) line += ` ← ${errorLine(error.cause)}`
  return line
}

// The frames are paths and names, kept as they are (scrubSecrets would take a file:// URL for an address); the rest of
// the stack, the message it starts with, is scrubbed. Frames past 50 are dropped, as V8 keeps only 10 by default anyway.
function scrubStack(stack: string): string {
  const lines = stack.split('\n')
  const firstFrame = lines.findIndex((line) => /^\s+at /.test(line))
  const header = firstFrame < 0 ? lines : lines.slice(0, firstFrame)
  const frames = firstFrame < 0 ? [] : lines.slice(firstFrame, firstFrame + 50)
  return [scrubSecrets(header.join('\n')), ...frames].join('\n')
}

// A getter that throws (a proxy, an odd error class) must not make the log call throw.
function textOf(read: () => unknown): string {
  try {
    const value = read()
    // A message or stack that is not a string is shown as JS would show it, [object Object] included.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    return typeof value === 'string' ? value : value === undefined ? '' : String(value)
  } catch {
    return ''
  }
}
