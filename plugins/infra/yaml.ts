/** A value the YAML writer takes: what JSON has. */
export type YamlValue = string | number | boolean | null | readonly YamlValue[] | { readonly [key: string]: YamlValue }

/**
 * Block-style YAML for Kubernetes manifests. Every string is written
 * double-quoted (JSON escaping is valid YAML), so no value is ever read back
 * as another type ("on", "1.0", "08" stay strings).
 *
 * @example
 * toYaml({ kind: 'Service', spec: { ports: [{ port: 80 }] } })
 */
export function toYaml(value: YamlValue, indent = 0): string {
  return lines(value, indent).join('\n') + '\n'
}

const KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/
/** Keys YAML 1.1 readers would take for booleans or null. */
const AMBIGUOUS = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL)$/

/** JSON escaping plus what YAML forbids raw (DEL, C1 controls) or reads as a line break (U+2028, U+2029). */
function quote(text: string): string {
  return JSON.stringify(text).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function scalar(value: YamlValue): string | undefined {
  if (value === null) return 'null'
  if (typeof value === 'string') return quote(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot write ${value} in YAML`)
    return String(value)
  }
  if (typeof value === 'boolean') return String(value)
  if (Array.isArray(value) && value.length === 0) return '[]'
  if (!Array.isArray(value) && typeof value === 'object' && Object.keys(value).length === 0) return '{}'
  return undefined
}

function key(name: string): string {
  return KEY.test(name) && !AMBIGUOUS.test(name) ? name : quote(name)
}

function lines(value: YamlValue, indent: number): string[] {
  const pad = ' '.repeat(indent)
  const simple = scalar(value)
  if (simple !== undefined) return [pad + simple]
  const out: string[] = []
  if (Array.isArray(value)) {
    for (const item of value as readonly YamlValue[]) {
      const itemScalar = scalar(item)
      if (itemScalar !== undefined) {
        out.push(`${pad}- ${itemScalar}`)
        continue
      }
      // The first line of a nested block goes after the dash; the rest keep its indentation.
      const nested = lines(item, indent + 2)
      out.push(`${pad}- ${nested[0]!.trimStart()}`, ...nested.slice(1))
    }
    return out
  }
  for (const [name, item] of Object.entries(value as Record<string, YamlValue>)) {
    const itemScalar = scalar(item)
    if (itemScalar !== undefined) out.push(`${pad}${key(name)}: ${itemScalar}`)
    else out.push(`${pad}${key(name)}:`, ...lines(item, Array.isArray(item) ? indent : indent + 2))
  }
  return out
}
