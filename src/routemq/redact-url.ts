/**
 * A URL safe to log: user name, password and query string removed.
 *
 * @example
 * redactUrl('mqtts://dev:s3cret@broker:8883/?x=1') // 'mqtts://broker:8883'
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    const path = parsed.pathname === '/' ? '' : parsed.pathname
    return `${parsed.protocol}//${parsed.host}${path}`
  } catch {
    return '<unparseable url>'
  }
}
