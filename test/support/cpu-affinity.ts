import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { childrenOf } from '../../src/testing/kill-process-tree.js'

/** What `pinProcesses` changed, to put back. */
export interface Pinning {
  /** The processes pinned, by pid. */
  readonly pids: readonly number[]
  /** Gives every pinned process (that still runs) its former CPU list. */
  restore(): void
}

/**
 * The CPUs this process may run on, as `taskset` lists them (e.g. `0-1`),
 * or `undefined` when `taskset` is missing or fails (then nothing can be pinned).
 *
 * @example
 * const cpus = cpuList(process.pid) // '0,1'
 */
export function cpuList(pid: number): string | undefined {
  try {
    const out = execFileSync('taskset', ['-p', '-c', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    return /:\s*(\S+)\s*$/.exec(out)?.[1]
  } catch {
    return undefined
  }
}

/**
 * Pins each process of `roots` (all its threads) and, unless
 * `withDescendants` is false, its descendants to `cpus` (a `taskset` list
 * such as `1`). Children forked later inherit it. Throws when `taskset` fails
 * for a root; a descendant that exited meanwhile is skipped.
 *
 * @example
 * const pinning = pinProcesses([postmasterPid], '1')
 * // ... measure ...
 * pinning.restore()
 */
export function pinProcesses(roots: readonly number[], cpus: string, withDescendants = true): Pinning {
  const before = new Map<number, string>()
  for (const root of roots) {
    for (const pid of withDescendants ? [root, ...descendants(root)] : [root]) {
      const former = cpuList(pid)
      if (former === undefined) {
        if (pid === root) throw new Error(`cannot read the CPU affinity of process ${pid} (is taskset installed?)`)
        continue
      }
      try {
        execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
        before.set(pid, former)
      } catch (error) {
        if (pid === root) throw new Error(`cannot pin process ${pid} to CPU ${cpus}: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
      }
    }
  }
  return {
    pids: [...before.keys()],
    restore: () => {
      for (const [pid, former] of before) {
        try {
          execFileSync('taskset', ['-a', '-p', '-c', former, String(pid)], { stdio: 'ignore' })
        } catch {
          // It exited: nothing to restore.
        }
      }
    },
  }
}

/** The PostgreSQL postmaster's pid, from the first line of `postmaster.pid` in its data directory. */
export function postmasterPid(dataDir: string): number {
  const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n', 1)[0])
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${dataDir}/postmaster.pid does not start with a pid`)
  return pid
}

function descendants(pid: number): number[] {
  return childrenOf(pid).flatMap((child) => [child, ...descendants(child)])
}
