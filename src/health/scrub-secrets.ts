/** What is kept of a text; twice as much is scrubbed, so every pattern below stays cheap however a server words its errors. */
const MAX_LENGTH = 2000
// scheme:// and the rest of the token, which hostOf reduces to the host
const URL_PATTERN = /(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}:\/\/(\S*)/gi
// user:password@host, without a scheme; the password may hold an unescaped '/', '?' or '#', up to the last '@'
const USERINFO = /(?<![\w.:@-])[\w.-]{1,128}:[^\s'"]{0,256}@((?:[\w-]+\.)*[\w-]+(?::\d+)?|\[[0-9a-f:.]+\](?::\d+)?)/gi
// password=..., "db_password": "...", PGPASSWORD=..., AWS_SECRET_ACCESS_KEY=..., private_key: ...
const SECRET_PAIR =
  /(?<![\w-])([\w-]{0,64}?(?:password|passwd|pwd|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)[\w-]{0,32})(["']?\s*[=:]\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\n&;,}]+)/gi
const AUTHORIZATION = /\b(bearer|basic)\s+[\w.~+/=-]+/gi

/**
 * Text safe to show outside the process (health bodies, metrics): every URL
 * is reduced to its `host:port` (no scheme, user, password, path or query),
 * `user:password@host` to the host, the values of `password=...`-style pairs
 * (to the end of the line when unquoted) and bearer tokens are blanked, and
 * the text is cut to 2000 characters (the token the cut falls in is dropped).
 *
 * @example
 * scrubSecrets('connect to postgres://app:s3cret@db:5432/app failed') // 'connect to db:5432 failed'
 */
export function scrubSecrets(text: string): string {
  // Scrubbed within a window twice the kept length; the window's cut drops the token it falls in (half a
  // URL or user:password@host would no longer match), and only scrubbed text is cut to what is kept.
  const window = text.length > 2 * MAX_LENGTH ? text.slice(0, 2 * MAX_LENGTH).replace(/\S*$/, '') : text
  const scrubbed = window
    .replace(URL_PATTERN, (_url, rest: string) => hostOf(rest))
    .replace(USERINFO, '$1')
    .replace(SECRET_PAIR, (_pair, key: string, separator: string, value: string) => {
      const quote = value[0] === '"' || value[0] === "'" ? value[0] : ''
      return `${key}${separator}${quote}<redacted>${quote}`
    })
    .replace(AUTHORIZATION, '$1 <redacted>')
  return scrubbed.length > MAX_LENGTH || window.length < text.length ? `${scrubbed.slice(0, MAX_LENGTH)}…` : scrubbed
}

/** The host[:port] of what follows `scheme://`, or `<address>` where it cannot be told without showing user info. */
function hostOf(rest: string): string {
  const at = rest.lastIndexOf('@')
  const end = rest.search(/[/?#]/)
  // An '@' after the first '/', '?' or '#' may end a password that holds one of them unescaped: the text
  // before that character may then be user name and password, not host, and is not shown.
  if (at >= 0 && end >= 0 && at > end) return '<address>'
  const host = rest.slice(at + 1, end < 0 ? undefined : end)
  // '%40' is an encoded '@': user info percent-encoded along with its '@' would read as the host.
  return host === '' || /%40/i.test(host) ? '<address>' : host
}
