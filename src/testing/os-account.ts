import { readFileSync } from 'node:fs'

/**
 * A local OS user to run a child process as, by numeric ids.
 *
 * @example
 * const account: OsAccount = { name: 'postgres', uid: 101, gid: 104, home: '/var/lib/postgresql' }
 */
export interface OsAccount {
  readonly name: string
  readonly uid: number
  readonly gid: number
  readonly home: string
}

/**
 * Finds a user in the passwd file; `undefined` when there is no such user.
 *
 * @example
 * lookupOsAccount('postgres') // { name: 'postgres', uid: 101, gid: 104, home: '/var/lib/postgresql' }
 */
export function lookupOsAccount(name: string, passwdFile = '/etc/passwd'): OsAccount | undefined {
  let text: string
  try {
    text = readFileSync(passwdFile, 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    const [user, , uid, gid, , home] = line.split(':')
    if (user === name && uid !== undefined && gid !== undefined) {
      return Object.freeze({ name, uid: Number(uid), gid: Number(gid), home: home || '/' })
    }
  }
  return undefined
}
