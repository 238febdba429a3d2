/** One sample line of the Prometheus text format. */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** A metric family: its TYPE, HELP and samples. */
export interface Family {
  readonly type: string
  readonly help: string
  readonly samples: Sample[]
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const SUFFIXES: Readonly<Record<string, readonly string[]>> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
}

/**
 * Parses Prometheus text exposition (version 0.0.4) strictly: every line must
 * be a HELP, a TYPE or a sample of the family declared before it, so a
 * malformed exposition throws, naming the line.
 *
 * @example
 * const families = parsePrometheusText(await (await fetch(url)).text())
 * families.get('routemq_health_score')!.samples[0]!.value
 */
export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>()
  let current: { name: string; family: Family } | undefined
  const lines = text.split('\n')
  lines.forEach((line, index) => {
    const fail = (why: string): never => {
      throw new Error(`line ${index + 1} ${why}: ${JSON.stringify(line)}`)
    }
    if (line === '') return
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line)
      if (!match) return // a plain comment
      const [, keyword, name, rest] = match as unknown as [string, string, string, string]
      if (!METRIC_NAME.test(name)) fail('has a bad metric name')
      let family = families.get(name)
      if (!family) families.set(name, (family = { type: 'untyped', help: '', samples: [] }))
      if (keyword === 'TYPE') {
        if (!TYPES.has(rest)) fail('has an unknown type')
        ;(family as { type: string }).type = rest
      } else {
        ;(family as { help: string }).help = rest
      }
      current = { name, family }
      return
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line)
    if (!match) return fail('is not a sample')
    const [, name, , labelText, valueText] = match as unknown as [string, string, string | undefined, string | undefined, string]
    if (!current || !SUFFIXES[current.family.type]!.some((suffix) => name === current!.name + suffix)) fail(`is not of the family declared before it (${current?.name})`)
    const labels: Record<string, string> = {}
    if (labelText) {
      const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y
      let at = 0
      while (at < labelText.length) {
        label.lastIndex = at
        const pair = label.exec(labelText)
        if (!pair || !LABEL_NAME.test(pair[1]!)) fail('has malformed labels')
        labels[pair![1]!] = pair![2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
        at = label.lastIndex
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText)
    if (Number.isNaN(value) && valueText !== 'NaN') fail('has a value that is not a number')
    current!.family.samples.push({ name, labels, value })
  })
  return families
}
