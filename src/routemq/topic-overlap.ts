/**
 * Whether some topic matches both MQTT filters (`$share/<group>/` prefixes
 * ignored), level by level: `#` covers everything after it, `+` any one level.
 *
 * @example
 * filtersOverlap('a/+/c', 'a/b/#') // true: a/b/c matches both
 * filtersOverlap('a/+', 'b/#')     // false
 */
export function filtersOverlap(a: string, b: string): boolean {
  const left = unshare(a).split('/')
  const right = unshare(b).split('/')
  for (let i = 0; ; i++) {
    const x = left[i]
    const y = right[i]
    if (x === '#' || y === '#') {
      // A first-level wildcard never matches `$` topics.
      const other = x === '#' ? y : x
      return !(i === 0 && other !== undefined && other.startsWith('$'))
    }
    if (x === undefined || y === undefined) return x === y
    if (x === '+' || y === '+') {
      if (i === 0 && (x.startsWith('$') || y.startsWith('$'))) return false
      continue
    }
    if (x !== y) return false
  }
}

/** Every pair of filters in the list that some topic matches both of. */
export function overlappingFilters(filters: readonly string[]): [string, string][] {
  const pairs: [string, string][] = []
  for (let i = 0; i < filters.length; i++) {
    for (let j = i + 1; j < filters.length; j++) {
      if (filtersOverlap(filters[i]!, filters[j]!)) pairs.push([filters[i]!, filters[j]!])
    }
  }
  return pairs
}

function unshare(filter: string): string {
  return filter.startsWith('$share/') ? filter.slice(filter.indexOf('/', 7) + 1) : filter
}
