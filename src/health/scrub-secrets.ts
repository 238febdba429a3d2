// scheme://[anything up to the last @ of the token]host[:port][rest]
const URL_PATTERN = /\b[a-z][a-z0-9+.-]*:\/\/(?:\S*@)?([^\s/?#@]*)\S*/gi
// user:password@host without a scheme
const USERINFO = /(?<![\w.-])[^\s:/@'"]+:[^\s@/'"]+@([\w.-]+|\[[0-9a-f:.]+\])/gi
// password=..., "db_password": "...", PGPASSWORD=..., api_key: ...
const SECRET_PAIR = /([\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|credential)s?)(["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s&;,}]+)/gi
const AUTHORIZATION = /\b(Bearer|Basic)\s+[\w.~+/=-]+/g

/**
 * Text safe to show outside the process (health bodies, metrics): every URL
 * is reduced to its `host:port` (no scheme, user, password, path or query),
 * `user:password@host` to the host, and `password=...`-style pairs and
 * bearer tokens lose their values.
 *
 * @example
 * scrubSecrets('connect to postgres://app:s3cret@db:5432/app failed') // 'connect to db:5432 failed'
 */
export function scrubSecrets(text: string): string {
  return text
    .replace(URL_PATTERN, (_url, host: string) => host || '<address>')
    .replace(USERINFO, '$1')
    .replace(SECRET_PAIR, (_pair, key: string, separator: string, value: string) => {
      const quote = value[0] === '"' || value[0] === "'" ? value[0] : ''
      return `${key}${separator}${quote}<redacted>${quote}`
    })
    .replace(AUTHORIZATION, '$1 <redacted>')
}
