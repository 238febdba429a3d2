import { readFileSync, realpathSync, statSync, type Stats } from 'node:fs'
import { dirname } from 'node:path'
import type { OsAccount } from './os-account.js'
import { TopologyError } from './topology-error.js'

/**
 * Throws a {@link TopologyError} unless every account can reach into
 * `directory`, i.e. has search (execute) permission on it and on each of its
 * ancestors, judged by their mode bits, owners and groups. A root session
 * runs mosquitto and PostgreSQL as their own users inside TMPDIR; with TMPDIR
 * under a private directory such as /root they would fail with no more than
 * "Unable to open config file" or "Permission denied". A directory that does
 * not exist is left to the caller's own error.
 *
 * @example
 * assertTraversable(tmpdir(), [lookupOsAccount('postgres')!])
 */
export function assertTraversable(directory: string, accounts: readonly OsAccount[], groupFile = '/etc/group'): void {
  if (accounts.length === 0) {
    return
  }
  let chain: { readonly path: string; readonly stats: Stats }[]
  try {
    chain = ancestry(realpathSync(directory)).map((path) => ({ path, stats: statSync(path) }))
  } catch {
    return
  }
  const members = groupMembership(groupFile)
  for (const account of accounts) {
    const groups = new Set([account.gid, ...(members.get(account.name) ?? [])])
    const blocked = chain.find(({ stats }) => !canSearch(stats, account, groups))
    if (blocked !== undefined) {
      const names = accounts.map((each) => `"${each.name}"`).join(' and ')
      throw new TopologyError(
        `The temporary directory ${directory} is not reachable by the "${account.name}" user: ${blocked.path} ` +
          `(mode ${(blocked.stats.mode & 0o777).toString(8).padStart(3, '0')}, owner uid ${blocked.stats.uid}) does not let it pass. ` +
          `The topology runs its servers as the ${names} user${accounts.length > 1 ? 's' : ''}, so TMPDIR must be a directory they can reach: ` +
          'set TMPDIR=/tmp, or another directory whose every ancestor is world-searchable (chmod o+x).',
      )
    }
  }
}

function ancestry(path: string): string[] {
  const chain = [path]
  for (let parent = dirname(path); parent !== chain[0]; parent = dirname(parent)) {
    chain.unshift(parent)
  }
  return chain
}

function canSearch(stats: Stats, account: OsAccount, groups: ReadonlySet<number>): boolean {
  if (account.uid === 0) {
    return true
  }
  // As in the kernel, only the first matching class counts: an owner
  // without u+x is refused even when o+x is set.
  if (stats.uid === account.uid) {
    return (stats.mode & 0o100) !== 0
  }
  if (groups.has(stats.gid)) {
    return (stats.mode & 0o010) !== 0
  }
  return (stats.mode & 0o001) !== 0
}

// Supplementary groups by user name, from the group file; a missing or
// unreadable file leaves every user with only its primary group.
function groupMembership(groupFile: string): Map<string, number[]> {
  const members = new Map<string, number[]>()
  let text: string
  try {
    text = readFileSync(groupFile, 'utf8')
  } catch {
    return members
  }
  for (const line of text.split('\n')) {
    const [, , gid, users] = line.split(':')
    if (gid === undefined || users === undefined || users.trim() === '') {
      continue
    }
    for (const user of users.trim().split(',')) {
      members.set(user, [...(members.get(user) ?? []), Number(gid)])
    }
  }
  return members
}
