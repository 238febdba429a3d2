import { InvalidOptionError } from './errors/invalid-option-error.js'
import { assertKnownKeys } from './known-options.js'
import { mqttTextProblem } from './mqtt-text.js'
import { MAX_TIMER_MS } from './timer-limit.js'

/**
 * Checks one option's value and throws `InvalidOptionError` naming `field`
 * (the option's full path) when it is wrong. It sees `undefined` for an
 * option not given, which every check below accepts unless `required`.
 */
export type OptionCheck = (value: unknown, field: string) => void

/**
 * A check for every key of the options interface `T`. Typed this way, the
 * compiler refuses a shape that forgets a key of `T` or has one `T` lacks, so
 * the keys `checkOptions` accepts are always the interface's.
 *
 * @example
 * const SESSION_SHAPE: OptionShape<SessionOptions> = { adoptOrphans: isBoolean, orphanAfterSeconds: wholeNumber(1, 86_400) }
 */
export type OptionShape<T> = { readonly [K in keyof T]-?: OptionCheck }

/**
 * Checks an options object against its shape, nested objects and lists
 * included: a key the shape does not have is refused with the closest one
 * (`mqtt.offlineBufer: is not an option; did you mean mqtt.offlineBuffer?`),
 * a value of the wrong type or out of range names its full path.
 * `field` is the path of the object itself, `''` at the root.
 *
 * @example
 * checkOptions(options, BROKER_POOL_OPTIONS_SHAPE, 'mqtt')
 */
export function checkOptions<T>(options: unknown, shape: OptionShape<T>, field: string): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(field || 'options', 'must be an object of options, { ... }')
  }
  const checks = shape as Readonly<Record<string, OptionCheck>>
  assertKnownKeys(options, field, Object.keys(checks))
  for (const [key, check] of Object.entries(checks)) check(readOption(options, key, join(field, key)), join(field, key))
}

/**
 * `object[key]`, with a getter that throws refused as the option `field`:
 * its own error would name no option. Its message stays out, as it may
 * quote a secret the getter was computing.
 */
function readOption(object: object, key: string | number, field: string): unknown {
  try {
    return (object as Record<string | number, unknown>)[key]
  } catch {
    throw new InvalidOptionError(field, 'cannot be read: its getter threw; give a plain value')
  }
}

/** A nested options object. */
export function shapeOf<T>(shape: OptionShape<T>): OptionCheck {
  return (value, field) => {
    if (value !== undefined) checkOptions(value, shape, field)
  }
}

/** An option that must be given; `hint` says what to give. */
export function required(check: OptionCheck, hint: string): OptionCheck {
  return (value, field) => {
    if (value === undefined) throw new InvalidOptionError(field, hint)
    check(value, field)
  }
}

export const isBoolean: OptionCheck = (value, field) => {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidOptionError(field, 'must be true or false')
}

/** Any string, the empty one included (a password may be empty). */
export const isString: OptionCheck = (value, field) => {
  if (value !== undefined && typeof value !== 'string') throw new InvalidOptionError(field, 'must be a string')
}

export const nonEmptyString: OptionCheck = (value, field) => {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw new InvalidOptionError(field, 'must be a non-empty string')
}

/** A string `pattern` matches; `described` says what it must be, e.g. `'1 to 64 letters, digits, "-" or "_"'`. */
export function matching(pattern: RegExp, described: string): OptionCheck {
  return (value, field) => {
    if (value !== undefined && (typeof value !== 'string' || !pattern.test(value))) throw new InvalidOptionError(field, `must be ${described}`)
  }
}

/**
 * What an id of a broker or a database server may hold: it names health
 * checks (`broker/<id>`), metrics labels and log lines, which all take it as
 * given, so one that passes here is the name seen at start.
 */
export const ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

/** A region's name, as geo rules, pools and messages use it. */
export const REGION_PATTERN = /^[\w.-]{1,64}$/

export const identifier = matching(ID_PATTERN, 'an id of 1 to 128 letters, digits, ".", "_", ":" or "-", such as "eu-1" or "db-2:5432"; it names health checks, metrics and logs as given')

export const regionName = matching(REGION_PATTERN, 'a region name of 1 to 64 letters, digits, ".", "_" or "-", such as "eu-west"')

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): OptionCheck {
  const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`
  return (value, field) => {
    if (value !== undefined && (!Number.isInteger(value) || (value as number) < min || (value as number) > max)) {
      throw new InvalidOptionError(field, `must be a whole number ${range}`)
    }
  }
}

/** Milliseconds a timer waits: a whole number from `min` to what `setTimeout` can wait (a longer one fires at once). */
export function milliseconds(min: number): OptionCheck {
  return wholeNumber(min, MAX_TIMER_MS)
}

/** MQTT's longest string or binary field, in bytes. */
const MQTT_FIELD_BYTES = 65_535

/**
 * A string sent as an MQTT UTF-8 string (a client id, a user name): at most
 * 65 535 bytes of UTF-8, none of the characters MQTT forbids. A broker drops
 * the connection over anything else; MQTT.js throws while writing it.
 */
export function mqttString(options: { readonly nonEmpty: boolean; readonly maxBytes?: number }): OptionCheck {
  const maxBytes = options.maxBytes ?? MQTT_FIELD_BYTES
  return (value, field) => {
    if (value === undefined) return
    if (typeof value !== 'string' || (options.nonEmpty && value.length === 0)) {
      throw new InvalidOptionError(field, options.nonEmpty ? 'must be a non-empty string' : 'must be a string')
    }
    if (Buffer.byteLength(value) > maxBytes) throw new InvalidOptionError(field, `must be at most ${maxBytes} bytes of UTF-8`)
    const problem = mqttTextProblem(value)
    if (problem) throw new InvalidOptionError(field, problem)
  }
}

/** A string sent as MQTT binary data (a password): at most 65 535 bytes. */
export const mqttBinaryString: OptionCheck = (value, field) => {
  if (value === undefined) return
  if (typeof value !== 'string') throw new InvalidOptionError(field, 'must be a string')
  if (Buffer.byteLength(value) > MQTT_FIELD_BYTES) throw new InvalidOptionError(field, `must be at most ${MQTT_FIELD_BYTES} bytes`)
}

/** A finite number from `min` to `max`, fractions allowed. */
export function finiteNumber(min: number, max = Number.MAX_VALUE): OptionCheck {
  const range = max === Number.MAX_VALUE ? `of ${min} or more` : `from ${min} to ${max}`
  return (value, field) => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)) {
      throw new InvalidOptionError(field, `must be a number ${range}`)
    }
  }
}

/** One of `values`; `described` replaces the generated list (`'4 (MQTT 3.1.1) or 5'`). */
export function oneOf(values: readonly (string | number)[], described = listed(values)): OptionCheck {
  return (value, field) => {
    if (value !== undefined && !values.includes(value as string | number)) throw new InvalidOptionError(field, `must be ${described}`)
  }
}

export function isFunction(described: string): OptionCheck {
  return (value, field) => {
    if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(field, `must be ${described}`)
  }
}

/** A list whose items pass `item` (each named `field[i]`), with at least `min` of them; a hole (`[, url]`) is refused like `undefined`. */
export function listOf(item: OptionCheck, min = 0, tooShort = `list at least ${min}`): OptionCheck {
  return (value, field) => {
    if (value === undefined) return
    if (!Array.isArray(value)) throw new InvalidOptionError(field, 'must be a list, [ ... ]')
    if (value.length < min) throw new InvalidOptionError(field, tooShort)
    // A for loop, not forEach: forEach skips holes, which the code using the list would then meet as undefined.
    for (let index = 0; index < value.length; index++) {
      const entry = readOption(value, index, `${field}[${index}]`)
      if (entry === undefined) throw new InvalidOptionError(`${field}[${index}]`, 'is undefined or a hole; remove it or give a value')
      item(entry, `${field}[${index}]`)
    }
  }
}

/** An object of any keys (`geo.endpoints`), each value passing `entry` and named `field.key`. */
export function recordOf(entry: OptionCheck): OptionCheck {
  return (value, field) => {
    if (value === undefined) return
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidOptionError(field, 'must be an object, { ... }')
    for (const key of Object.keys(value)) entry(readOption(value, key, join(field, key)), join(field, key))
  }
}

type Kind = 'string' | 'number' | 'boolean' | 'false' | 'object' | 'array' | 'function'

/**
 * An option of several types (`string | BrokerConfig`, `HealthOptions | false`):
 * the check of the value's kind runs (`true` takes any value of that kind),
 * and a value of another kind is refused with `expected`.
 *
 * @example
 * byKind('must be an object of options, or false to turn health off', { false: true, object: shapeOf(HEALTH_OPTIONS_SHAPE) })
 */
export function byKind(expected: string, checks: Partial<Readonly<Record<Kind, OptionCheck | true>>>): OptionCheck {
  return (value, field) => {
    if (value === undefined) return
    const kind = kindOf(value)
    const check = (value === false ? checks.false : undefined) ?? (kind === undefined ? undefined : checks[kind])
    if (check === undefined) throw new InvalidOptionError(field, expected)
    if (check !== true) check(value, field)
  }
}

/** A `Logger`: an object with `debug`, `info`, `warn` and `error` methods. */
export const isLogger: OptionCheck = (value, field) => {
  if (value === undefined) return
  const logger = value as Record<string, unknown> | null
  if (typeof logger !== 'object' || logger === null || !['debug', 'info', 'warn', 'error'].every((level) => typeof logger[level] === 'function')) {
    throw new InvalidOptionError(field, 'must be a Logger, { debug, info, warn, error }, such as new ConsoleLogger() or a pino logger')
  }
}

function kindOf(value: unknown): Kind | undefined {
  if (Array.isArray(value)) return 'array'
  if (value === null) return undefined
  const type = typeof value
  return type === 'string' || type === 'number' || type === 'boolean' || type === 'object' || type === 'function' ? type : undefined
}

function join(field: string, key: string): string {
  return field ? `${field}.${key}` : key
}

function listed(values: readonly (string | number)[]): string {
  const quoted = values.map((value) => (typeof value === 'string' ? `'${value}'` : String(value)))
  return quoted.length === 1 ? quoted[0]! : `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`
}
