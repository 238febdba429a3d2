/**
 * MQTT's rules for its UTF-8 strings (MQTT 5.0 §1.5.4, 3.1.1 §1.5.3), which
 * brokers enforce by dropping the connection: no NUL, no unpaired surrogate
 * (it has no UTF-8 form), and no control character (U+0001–U+001F,
 * U+007F–U+009F) or Unicode non-character (U+FDD0–U+FDEF, U+nFFFE, U+nFFFF),
 * which Mosquitto refuses too.
 */

/** Only printable ASCII: the common case, decided without walking the string. */
const PLAIN = /^[\u0020-\u007E]*$/

/**
 * The reason `text` is no MQTT UTF-8 string, naming the first offending
 * character and where it is, or `undefined` when it is one.
 *
 * @example
 * mqttTextProblem('a\u0001b') // 'U+0001 (a control character) at character 2 is not allowed in MQTT text'
 */
export function mqttTextProblem(text: string): string | undefined {
  if (PLAIN.test(text)) return undefined
  let position = 0
  for (const character of text) {
    position++
    const kind = forbidden(character)
    if (kind) {
      const code = character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
      return `U+${code} (${kind}) at character ${position} is not allowed in MQTT text`
    }
  }
  return undefined
}

function forbidden(character: string): string | undefined {
  const code = character.codePointAt(0)!
  if (code === 0) return 'the NUL character'
  if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return 'a control character'
  // for...of yields a lone surrogate as a one-unit string.
  if (code >= 0xd800 && code <= 0xdfff) return 'an unpaired surrogate'
  if ((code >= 0xfdd0 && code <= 0xfdef) || (code & 0xfffe) === 0xfffe) return 'a Unicode non-character'
  return undefined
}

/**
 * `text` in double quotes for an error message or a log line, every character
 * that could break or forge a line escaped: JSON's escapes, and also the C1
 * controls (U+0085 is a line break) and U+2028/U+2029 that JSON leaves raw.
 *
 * @example
 * quoted('a\nb\u0085') // '"a\\nb\\u0085"'
 */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(/[\u007F-\u009F\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
