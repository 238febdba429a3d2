/**
 * A PostgreSQL WAL position (`pg_lsn`, written `X/Y` in hex) as a bigint, so
 * that positions can be compared and subtracted.
 *
 * @example
 * parseLsn('0/16B3748') // 23803720n
 */
export function parseLsn(text: string | null | undefined): bigint | undefined {
  if (!text) return undefined
  const slash = text.indexOf('/')
  if (slash < 0) return undefined
  return (BigInt(`0x${text.slice(0, slash)}`) << 32n) + BigInt(`0x${text.slice(slash + 1)}`)
}
