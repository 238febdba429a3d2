/** What is kept of a text; twice as much is scrubbed, so every pattern below stays cheap however a server words its errors. */
const MAX_LENGTH = 2000
// scheme:// and the rest of the token, which hostOf reduces to the host
const URL_PATTERN = /(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,30}:\/\/(\S*)/gi
const HOST = String.raw`((?:[\w-]+\.)*[\w-]+(?::\d+)?|\[[0-9a-f:.]+\](?::\d+)?)`
// user:password@host, without a scheme; the user may be an IPv6 literal ('[::1]:password@host'), the password may hold
// an unescaped '/', '?' or '#', up to the last '@'
const USERINFO = new RegExp(String.raw`(?<![\w.:@-])(?:[\w.-]{1,128}|\[[0-9a-f:.]+\]):[^\s'"]{0,256}@${HOST}`, 'gi')
// [scheme://]user:pass word@host: a password holding spaces or tabs, or one a line break parts from its '@'. Its first
// word is no port ('h:1883 refused by bob@corp') and holds no '/', '?' or '#' (a URL's path); the user is not all
// digits (a time, '12:30 ...'); only a match holding whitespace is taken, the rest is left to the patterns below.
const SPACED_USERINFO = new RegExp(
  String.raw`(?<![\w.:@-])(?:[a-z][a-z0-9+.-]{0,30}:\/\/)?(?!\d+:)(?:[\w.-]{1,128}|\[[0-9a-f:.]+\]):(?!\d+\s)[^\s'"@/?#]{1,256}(?:[ \t]+[^\s'"@]{1,256}){0,4}\s*@${HOST}`,
  'gi',
)
// '@' look-alikes (fullwidth, small) that a reader takes for the '@' ending user info
const AT_LOOKALIKE = /[\uFF20\uFE6B]/g
// password=..., "db_password": "...", PGPASSWORD=..., AWS_SECRET_ACCESS_KEY=..., private_key: ...
const SECRET_PAIR =
  /(?<![\w-])([\w-]{0,64}?(?:password|passwd|pwd|secret|(?<![a-z0-9])pass(?![a-z0-9])|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)[\w-]{0,32})(["']?\s*(?:[=:]|%3D)\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\n&;,}]+)/gi
// host[:port], comma-separated as in a multi-host postgres URL
const HOSTS = /^(?:\[[^\]]*\]|[^:[\],]*)(?::\d*)?(?:,(?:\[[^\]]*\]|[^:[\],]*)(?::\d*)?)*$/
const AUTHORIZATION = /\b(bearer|basic)\s+[\w.~+/=-]+/gi

/**
 * Text safe to show outside the process (health bodies, metrics): every URL
 * is reduced to its `host:port` (no scheme, user, password, path or query),
 * `user:password@host` to the host (a password may hold spaces, and `＠`
 * counts as `@`), the values of `password=...`-style pairs
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
    .replace(AT_LOOKALIKE, '@')
    .replace(SPACED_USERINFO, (match, host: string) => (/\s/.test(match) ? host : match))
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
  if (host === '' || /%40/i.test(host)) return '<address>'
  // Without an '@', 'user:password' whose '@' whitespace parted from it reads as host:port; a port is digits.
  return at < 0 && !HOSTS.test(host) ? '<address>' : host
}
