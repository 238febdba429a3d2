/**
 * Reads back the block YAML that `toYaml` writes (maps, lists, compact
 * lists of maps, JSON-quoted strings, numbers, booleans, null, `[]`, `{}`),
 * documents separated by `---`. Strict: any other line throws, naming it,
 * so a malformed manifest fails the test. Independent of the writer's code.
 */
export function parseYamlDocuments(text: string): unknown[] {
  return text.split(/^---\n/m).filter((doc) => doc.trim() !== '').map((doc) => {
    const lines = doc.split('\n').filter((line) => line.trim() !== '').map((raw, n) => ({ indent: raw.length - raw.trimStart().length, text: raw.trim(), n }))
    const [value, next] = block(lines, 0, lines[0]?.indent ?? 0)
    if (next !== lines.length) throw new Error(`unexpected line ${lines[next]!.n + 1}: ${lines[next]!.text}`)
    return value
  })
}

interface Line { indent: number; text: string; n: number }

function scalar(text: string, line: Line): unknown {
  if (text === '[]') return []
  if (text === '{}') return {}
  if (text === 'null') return null
  if (text === 'true' || text === 'false') return text === 'true'
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text)
  if (text.startsWith('"')) return JSON.parse(text)
  throw new Error(`line ${line.n + 1}: unquoted scalar ${text}`)
}

function keyValue(text: string, line: Line): [string, string] {
  const match = /^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_./-]+):(?: (.*))?$/.exec(text)
  if (!match) throw new Error(`line ${line.n + 1}: not "key: value": ${text}`)
  return [match[1]!.startsWith('"') ? JSON.parse(match[1]!) as string : match[1]!, match[2] ?? '']
}

/** A block starting at `i` whose lines have exactly `indent`. */
function block(lines: Line[], i: number, indent: number): [unknown, number] {
  if (lines[i]!.text.startsWith('- ')) {
    const list: unknown[] = []
    while (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith('- ')) {
      const rest = lines[i]!.text.slice(2)
      if (/^("(?:[^"\\]|\\.)*"|[A-Za-z0-9_./-]+):( |$)/.test(rest)) {
        // A map whose first key sits after the dash: read it as a block at indent + 2.
        lines[i] = { ...lines[i]!, indent: indent + 2, text: rest }
        const [value, next] = block(lines, i, indent + 2)
        list.push(value)
        i = next
      } else {
        list.push(scalar(rest, lines[i]!))
        i++
      }
    }
    return [list, i]
  }
  const map: Record<string, unknown> = {}
  while (i < lines.length && lines[i]!.indent === indent && !lines[i]!.text.startsWith('- ')) {
    const [key, value] = keyValue(lines[i]!.text, lines[i]!)
    if (key in map) throw new Error(`line ${lines[i]!.n + 1}: key ${key} twice`)
    i++
    if (value !== '') {
      map[key] = scalar(value, lines[i - 1]!)
    } else {
      const child = lines[i]
      if (!child || child.indent < indent || (child.indent === indent && !child.text.startsWith('- '))) throw new Error(`line ${lines[i - 1]!.n + 1}: ${key} has no value`)
      const [nested, next] = block(lines, i, child.indent)
      map[key] = nested
      i = next
    }
  }
  return [map, i]
}
