import { MalformedPayloadError } from './errors/malformed-payload-error.js'
import type { PayloadFormat } from './route.js'

// First bytes a JSON text can start with: { [ " - 0-9 t f n
const JSON_START = new Uint8Array(256)
for (const c of '{["-0123456789tfn') JSON_START[c.charCodeAt(0)] = 1

/**
 * Turns a raw body into `ctx.payload` according to the route's format.
 *
 * @example
 * decodePayload(topic, Buffer.from('{"on":true}'), 'auto', undefined) // { on: true }
 */
export function decodePayload(topic: string, raw: Buffer, format: PayloadFormat, contentType: string | undefined): unknown {
  switch (format) {
    case 'buffer':
      return raw
    case 'text':
      return raw.toString('utf8')
    case 'json':
      return parseJson(topic, raw)
    case 'auto':
      if (contentType !== undefined && isJsonContentType(contentType)) return parseJson(topic, raw)
      if (looksLikeJson(raw)) {
        try {
          return JSON.parse(raw.toString('utf8'))
        } catch {
          return raw
        }
      }
      return raw
  }
}

function parseJson(topic: string, raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch (error) {
    throw new MalformedPayloadError(topic, error)
  }
}

function looksLikeJson(raw: Buffer): boolean {
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue
    return JSON_START[byte] === 1
  }
  return false
}

function isJsonContentType(contentType: string): boolean {
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase()
  return type === 'application/json' || type.endsWith('+json')
}
