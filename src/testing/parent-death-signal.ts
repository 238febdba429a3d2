import { execFileSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'

const SETPRIV_CANDIDATES = ['/usr/bin/setpriv', '/bin/setpriv']

let setprivPath: string | null | undefined

/**
 * Wraps a command line so that the child is sent `signal` when the node
 * process that started it dies, even by SIGKILL, when no exit hook can run.
 * It uses util-linux's `setpriv --pdeathsig`, which sets the signal and then
 * execs the command, so the child keeps setpriv's pid. Without a setpriv that
 * knows `--pdeathsig` (not Linux, util-linux older than 2.33) the command is
 * returned unchanged and children outlive a killed node process.
 *
 * The signal is not inherited by the child's own children, and a node
 * process killed in the instant between spawning and setpriv's prctl still
 * leaves that child behind. Linux sends it when the spawning *thread* ends:
 * children spawned from a worker thread die with that worker.
 *
 * @example
 * const { command, args } = withParentDeathSignal('/usr/sbin/mosquitto', ['-c', conf], 'SIGKILL')
 * spawn(command, args)
 */
export function withParentDeathSignal(
  command: string,
  args: readonly string[],
  signal: NodeJS.Signals,
): { readonly command: string; readonly args: readonly string[] } {
  const setpriv = findSetpriv()
  if (setpriv === undefined) {
    return { command, args }
  }
  return { command: setpriv, args: ['--pdeathsig', signal, '--', command, ...args] }
}

function findSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = process.platform === 'linux' ? (SETPRIV_CANDIDATES.find(supportsParentDeathSignal) ?? null) : null
  }
  return setprivPath ?? undefined
}

function supportsParentDeathSignal(candidate: string): boolean {
  try {
    accessSync(candidate, constants.X_OK)
    // Asked once per process: a setpriv without the option would make every
    // server fail to start with "unrecognized option".
    const help = execFileSync(candidate, ['--help'], { encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] })
    return help.includes('--pdeathsig')
  } catch {
    return false
  }
}
