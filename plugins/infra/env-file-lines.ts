import { InvalidOptionError } from '../../src/routemq/plugin-api.js'

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/

/**
 * Refuses what Node's `parseEnv` passes over in silence: a line that sets
 * nothing (no `NAME=`), which is a typo or a pasted fragment, and a variable
 * set twice, where the last would win unseen. Blank lines, `#` comments and
 * quoted values running over several lines are kept. The error names
 * `--env-file` and the line.
 *
 * @example
 * checkEnvFileLines('ROUTEMQ_MQTT_BROKERS=mqtt://b1:1883\nROUTEMQ_HEALTH_PORT 9464\n', 'app.env')
 * // Option "--env-file" is invalid: app.env line 2 sets no variable ...
 */
export function checkEnvFileLines(text: string, path: string): void {
  const lines = text.split(/\r?\n/)
  const firstLine = new Map<string, number>()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    if (line.trim() === '' || line.trim().startsWith('#')) continue
    const match = ASSIGNMENT.exec(line)
    if (!match) throw new InvalidOptionError('--env-file', `${path} line ${i + 1} sets no variable: write NAME=value, or start the line with # for a comment`)
    const [, name, value] = match as unknown as [string, string, string]
    const first = firstLine.get(name)
    if (first !== undefined) throw new InvalidOptionError('--env-file', `${path} line ${i + 1} sets ${name} again (first on line ${first + 1}): keep one`)
    firstLine.set(name, i)
    // A quoted value may hold newlines: its lines are part of it, up to the closing quote.
    const quote = value[0]
    if ((quote === '"' || quote === "'" || quote === '`') && !value.slice(1).includes(quote)) {
      let end = i + 1
      while (end < lines.length && !lines[end]!.includes(quote)) end++
      i = end
    }
  }
}
