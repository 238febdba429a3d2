import type { MessageContext } from '../../src/routemq/plugin-api.js'
import { parseLsn } from './lsn.js'

/**
 * The MQTT 5 user property that carries a write's WAL position from the
 * instance that wrote to whichever instance handles a later message: a
 * message that carries it is read, on any instance, from servers that have
 * replayed at least that far.
 */
export const WRITE_POSITION_PROPERTY = 'routemq-wal-position'

/** A WAL position as PostgreSQL writes it (`16/B374D848`), each half at most 8 hex digits. */
const POSITION_TEXT = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/

const carried = new WeakMap<MessageContext, bigint | null>()

/**
 * The write position a message carries, or `undefined` (none, or not a WAL
 * position: a malformed value is ignored, the message read as if it had none).
 *
 * @example
 * carriedPosition(ctx) // 23803720n for routemq-wal-position: 0/16B3748
 */
export function carriedPosition(message: MessageContext): bigint | undefined {
  if (message.properties?.userProperties === undefined) return undefined
  let position = carried.get(message)
  if (position === undefined) {
    const text = message.userProperty(WRITE_POSITION_PROPERTY)
    position = text !== undefined && POSITION_TEXT.test(text) ? parseLsn(text)! : null
    carried.set(message, position)
  }
  return position ?? undefined
}

/**
 * A WAL position written as PostgreSQL writes it.
 *
 * @example
 * formatLsn(23803720n) // '0/16B3748'
 */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}
