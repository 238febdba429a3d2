import { InvalidOptionError } from './errors/invalid-option-error.js'

/** Options of `refuseMisreadUserInfo`. */
export interface MisreadUserInfoOptions {
  /** Let `key=value@...` through in the query: PostgreSQL URLs carry settings there, Azure user names (`user@server`) among them. */
  readonly queryValuesMayHoldAt?: boolean
  /** Appended to the error: another way to give the password, such as `passwordEnv`. */
  readonly hint?: string
}

/**
 * Refuses a URL part of whose user name or password the parser read as
 * something else. A `/`, `?` or `#` left unescaped in a password ends the
 * authority early: `mqtt://u:12/pw@b:1883` is host `u`, port 12 and path
 * `/pw@b:1883`, so the client would connect to the wrong host without the
 * password, and show the password wherever it shows the host. The tell is an
 * `@` after the authority (or a `%40` in the host, user info encoded along
 * with its `@`). The error never echoes the URL.
 *
 * @example
 * refuseMisreadUserInfo(new URL(config.url), 'brokers[0].url', { hint: 'or give it as passwordEnv' })
 */
export function refuseMisreadUserInfo(url: URL, field: string, options: MisreadUserInfoOptions = {}): void {
  const part = misreadPart(url, options.queryValuesMayHoldAt ?? false)
  if (part === undefined) return
  const reason = part === 'host'
    ? 'its host holds an encoded "@" (%40); write user:password@host with a plain "@", and percent-encode only the user name and password'
    : `has an "@" in its ${part}: a "/", "?" or "#" left in the user name or password ends them early, and the URL names the wrong host; percent-encode the password (encodeURIComponent), and write an "@" that belongs in the ${part} as %40`
  throw new InvalidOptionError(field, options.hint === undefined ? reason : `${reason}, ${options.hint}`)
}

function misreadPart(url: URL, queryValuesMayHoldAt: boolean): 'host' | 'path' | 'query' | 'fragment' | undefined {
  if (/%40/i.test(url.host)) return 'host'
  if (url.pathname.includes('@')) return 'path'
  if (url.search.includes('@')) {
    // In a settings query, an '@' is no user info when it sits in the value of a key=value pair.
    const stray = url.search.slice(1).split('&').some((pair) => {
      const at = pair.indexOf('@')
      return at >= 0 && !(queryValuesMayHoldAt && pair.slice(0, at).includes('='))
    })
    if (stray) return 'query'
  }
  if (url.hash.includes('@')) return 'fragment'
  return undefined
}
