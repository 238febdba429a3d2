import { InvalidOptionError } from './errors/invalid-option-error.js'

/** Levenshtein distance: edits (insert, delete, replace) that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]!
}

/**
 * The `count` names of `known` closest to `name`, closest first.
 *
 * @example
 * closestNames('offlineBufer', ['offlineBuffer', 'brokers']) // ['offlineBuffer', 'brokers']
 */
export function closestNames(name: string, known: Iterable<string>, count = 3): string[] {
  const lower = name.toLowerCase()
  return [...known]
    .map((candidate) => ({ candidate, distance: editDistance(lower, candidate.toLowerCase()) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, count)
    .map((entry) => entry.candidate)
}

/**
 * Refuses an options object with a key it does not know (a typo would
 * otherwise be ignored silently): `InvalidOptionError` naming the field
 * (`prefix.key`) and the closest known option.
 *
 * @example
 * assertKnownKeys(options.health, 'health', ['probeIntervalMs', 'rise']) // health.rize: is not an option; did you mean health.rise?
 */
export function assertKnownKeys(options: object, prefix: string, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(prefix || 'options', 'must be an object')
  }
  const at = prefix ? `${prefix}.` : ''
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    const [closest] = closestNames(key, known, 1)
    const near = closest !== undefined && editDistance(key.toLowerCase(), closest.toLowerCase()) <= Math.max(2, Math.floor(key.length / 3))
    if (near) throw new InvalidOptionError(`${at}${key}`, 'is not an option', `${at}${closest}`)
    throw new InvalidOptionError(`${at}${key}`, `is not an option; the options are ${known.join(', ')}`)
  }
}
