import { InvalidRouteError } from './errors/invalid-route-error.js'
import { mqttTextProblem } from './mqtt-text.js'

/** One level of a route's topic pattern. */
export type TopicLevel =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'single' }
  | { readonly kind: 'multi' }

/** A route topic such as `devices/{id}/#`, checked and split into levels. */
export interface TopicPattern {
  /** The pattern as written, with `{param}` levels. */
  readonly pattern: string
  readonly levels: readonly TopicLevel[]
  /** The MQTT topic filter to subscribe to: every `{param}` becomes `+`. */
  readonly filter: string
  /** `[level index, name]` of each `{param}`, in order. */
  readonly params: readonly (readonly [number, string])[]
}

/** Room for `$share/<group>/` in MQTT's 65 535-byte limit. */
const MAX_FILTER_BYTES = 65_535 - 256

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/

/**
 * Parses and validates a route topic. A `{name}` level matches exactly one
 * topic level and is passed to the handler as `ctx.params.name`; `+` and `#`
 * keep their MQTT meaning.
 *
 * @example
 * parseTopicPattern('devices/{id}/telemetry').filter // 'devices/+/telemetry'
 */
export function parseTopicPattern(pattern: string): TopicPattern {
  if (typeof pattern !== 'string') {
    throw new InvalidRouteError(String(pattern), `the topic must be a string, not ${pattern === null ? 'null' : typeof pattern}; give a topic such as "devices/{id}/status"`)
  }
  if (pattern.length === 0) throw new InvalidRouteError(pattern, 'the topic is empty; give a topic such as "devices/{id}/status"')
  if (pattern.startsWith('$share/')) {
    throw new InvalidRouteError(pattern, 'write the plain topic and pass { shared: true } or { shared: "group" } instead of "$share/..."')
  }
  const problem = mqttTextProblem(pattern)
  if (problem) throw new InvalidRouteError(pattern, problem)
  if (Buffer.byteLength(pattern) > MAX_FILTER_BYTES) throw new InvalidRouteError(pattern, `a topic filter is at most ${MAX_FILTER_BYTES} bytes`)
  const parts = pattern.split('/')
  const levels: TopicLevel[] = []
  const params: (readonly [number, string])[] = []
  const seen = new Set<string>()
  parts.forEach((part, index) => {
    const param = PARAM.exec(part)
    if (param) {
      const name = param[1]!
      if (seen.has(name)) {
        throw new InvalidRouteError(pattern, `the parameter {${name}} appears twice; give each level its own name`)
      }
      seen.add(name)
      params.push([index, name])
      levels.push({ kind: 'param', name })
    } else if (part === '+') {
      levels.push({ kind: 'single' })
    } else if (part === '#') {
      if (index !== parts.length - 1) {
        throw new InvalidRouteError(pattern, "'#' matches every remaining level, so it must be the last level")
      }
      levels.push({ kind: 'multi' })
    } else if (/[+#{}]/.test(part)) {
      throw new InvalidRouteError(
        pattern,
        `level "${part}" mixes text with a wildcard or brace; a parameter must fill a whole level, as in "devices/{id}"`,
      )
    } else {
      levels.push({ kind: 'literal', value: part })
    }
  })
  const filter = levels
    .map((level) => (level.kind === 'literal' ? level.value : level.kind === 'multi' ? '#' : '+'))
    .join('/')
  return Object.freeze({ pattern, levels: Object.freeze(levels), filter, params: Object.freeze(params) })
}

/**
 * Joins a group prefix and a route topic with exactly one `/` between them.
 *
 * @example
 * joinTopic('devices/', '/{id}/status') // 'devices/{id}/status'
 */
export function joinTopic(prefix: string, topic: string): string {
  if (!prefix) return topic
  if (!topic) return prefix
  return `${prefix.replace(/\/+$/, '')}/${topic.replace(/^\/+/, '')}`
}
