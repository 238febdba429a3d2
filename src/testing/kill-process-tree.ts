import { readdirSync, readFileSync } from 'node:fs'

/**
 * SIGKILLs a process and every process descending from it, the way a power
 * cut or the OOM killer ends a whole server: for PostgreSQL the postmaster
 * and all its backends and auxiliary processes, which run in process groups
 * of their own and would otherwise go on serving (a CPU-bound query does
 * not check whether its postmaster still lives). Each process is stopped
 * before its children are listed, so none can fork one that is missed.
 * Outside Linux (no /proc) only `pid` itself is killed.
 *
 * Call it only while `pid` is known not to have been reaped yet, e.g. while
 * its ChildProcess has neither `exitCode` nor `signalCode`; the descendants
 * cannot be reaped meanwhile because their stopped parents do not run.
 *
 * @example
 * if (child.exitCode === null && child.signalCode === null) killProcessTree(child.pid!)
 */
export function killProcessTree(pid: number): void {
  const tree: number[] = []
  collect(pid, tree)
  for (const member of tree) {
    signal(member, 'SIGKILL')
  }
}

function collect(pid: number, tree: number[]): void {
  signal(pid, 'SIGSTOP')
  tree.push(pid)
  for (const child of childrenOf(pid)) {
    collect(child, tree)
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name)
  } catch {
    // Already gone: nothing left to stop or kill.
  }
}

/**
 * The pids `pid` forked that still run (Linux only; elsewhere none).
 *
 * @example
 * const children = childrenOf(process.pid)
 */
export function childrenOf(pid: number): number[] {
  if (process.platform !== 'linux') {
    return []
  }
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return []
  }
  try {
    // Each thread lists the children it forked.
    return tasks.flatMap((task) => parsePids(readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8')))
  } catch {
    // Kernels built without CONFIG_PROC_CHILDREN lack the file.
    return childrenByParentScan(pid)
  }
}

function childrenByParentScan(pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) {
      continue
    }
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name in parentheses may contain spaces or parentheses;
      // the fields after its last ")" are state, then parent pid.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (parent === pid) {
        children.push(Number(entry))
      }
    } catch {
      // The process ended while /proc was being read.
    }
  }
  return children
}

function parsePids(text: string): number[] {
  return text
    .split(/\s+/)
    .filter((field) => field !== '')
    .map(Number)
}
