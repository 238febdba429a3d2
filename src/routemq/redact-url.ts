/**
 * A URL safe to log: user name, password, query string and fragment
 * removed. A URL where part of what was written as user name or password may
 * have been read as host, path, query or fragment (an `@` or `%40` outside
 * the user info, as in `mqtt://u:12/pw@b`, whose password has an unescaped
 * `/`) is redacted whole, keeping only its scheme.
 *
 * @example
 * redactUrl('mqtts://dev:s3cret@broker:8883/?x=1') // 'mqtts://broker:8883'
 * redactUrl('mqtt://dev:12/s3cret@broker:1883') // 'mqtt://<redacted>'
 */
export function redactUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return '<unparseable url>'
  }
  // The parser ends the user info at the last '@' before the first '/', '?' or '#' (or '\' for http and ws):
  // an '@' after that means a password with one of those unescaped, and which part of the host, port or path
  // holds the rest of it cannot be told. A '%40' may be an '@' the writer percent-encoded along with it.
  if (/@|%40/i.test(parsed.host + parsed.pathname + parsed.search + parsed.hash)) {
    // Without '//' after it, what the parser took for the scheme may be the user name ('alice:pw@host').
    return String(url).trimStart().toLowerCase().startsWith(`${parsed.protocol}//`) ? `${parsed.protocol}//<redacted>` : '<redacted url>'
  }
  const path = parsed.pathname === '/' ? '' : parsed.pathname
  return `${parsed.protocol}//${parsed.host}${path}`
}
