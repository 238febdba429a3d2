const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/(?:[^\s/@]*@)?([^\s/?#@]*)[^\s]*/gi
const SECRET_PAIR = /\b(password|passwd|pwd|secret|token|sslpassword|sslkey)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,]+)/gi

/**
 * Text safe to show outside the process (health bodies, metrics): every URL
 * is reduced to its `host:port` (no scheme, user, password, path or query),
 * and `password=...`-style pairs lose their values.
 *
 * @example
 * scrubSecrets('connect to postgres://app:s3cret@db:5432/app failed') // 'connect to db:5432 failed'
 */
export function scrubSecrets(text: string): string {
  return text.replace(URL_PATTERN, (_url, host: string) => host || '<address>').replace(SECRET_PAIR, '$1$2<redacted>')
}
