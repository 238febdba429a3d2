import { spawn, type ChildProcess } from 'node:child_process'
import type { ExitGuard } from './exit-guard.js'
import type { ExitStatus } from './exit-status.js'
import type { OsAccount } from './os-account.js'
import { withParentDeathSignal } from './parent-death-signal.js'
import { ProcessLog } from './process-log.js'

/**
 * What to run and where its output goes.
 *
 * @example
 * const options: LoggedSpawnOptions = {
 *   command: '/usr/sbin/mosquitto', args: ['-c', 'mosquitto.conf'], cwd: dir,
 *   logFile: `${dir}/mosquitto.log`, account: undefined, guard, guardSignal: 'SIGKILL',
 * }
 */
export interface LoggedSpawnOptions {
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
  readonly logFile: string
  /** Run as this user instead of the current one. */
  readonly account: OsAccount | undefined
  readonly guard: ExitGuard
  /**
   * Signal the exit guard sends if the node process exits while this child
   * runs, and the child's parent-death signal for when node is killed.
   */
  readonly guardSignal: NodeJS.Signals
}

/**
 * A spawned child with its log. `exited` settles on the child's exit, `closed`
 * once every holder of its stdout/stderr is gone (for PostgreSQL that includes
 * all backends, which inherit the postmaster's stderr) and the log file is
 * closed.
 *
 * @example
 * const { exited } = spawnLogged(options)
 * console.log(describeExit(await exited))
 */
export interface LoggedChild {
  readonly child: ChildProcess
  readonly log: ProcessLog
  readonly exited: Promise<ExitStatus>
  readonly closed: Promise<ExitStatus>
}

/**
 * Spawns a child whose stdout and stderr go to a log file, adopted by the
 * exit guard and, where setpriv allows, sent `guardSignal` should the node
 * process die without running its exit hooks. PG* variables are left out of its environment so a developer's
 * own libpq settings cannot redirect the tools, messages are in English so
 * readiness lines can be matched, and HOME follows `account`.
 *
 * @example
 * const { child, log, closed } = spawnLogged(options)
 */
export function spawnLogged(options: LoggedSpawnOptions): LoggedChild {
  const log = new ProcessLog(options.logFile)
  // With uid/gid set, setpriv already runs as the account, which is all
  // --pdeathsig needs; the command it execs keeps the same pid.
  const { command, args } = withParentDeathSignal(options.command, options.args, options.guardSignal)
  const child = spawn(command, [...args], {
    cwd: options.cwd,
    env: childEnvironment(options.account),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.account === undefined ? {} : { uid: options.account.uid, gid: options.account.gid }),
  })
  options.guard.adopt(child, options.guardSignal)
  log.follow(child.stdout)
  log.follow(child.stderr)
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, error: undefined }))
    child.once('error', (error) => resolve({ code: null, signal: null, error }))
  })
  const closed = new Promise<ExitStatus>((resolve) => {
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) =>
      resolve(log.close().then(() => ({ code, signal, error: undefined }))),
    )
    child.once('error', (error) => resolve(log.close().then(() => ({ code: null, signal: null, error }))))
  })
  return { child, log, exited, closed }
}

function childEnvironment(account: OsAccount | undefined): NodeJS.ProcessEnv {
  const environment: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) {
      environment[key] = value
    }
  }
  environment.LC_ALL = 'C'
  environment.LANG = 'C'
  if (account !== undefined) {
    // Otherwise libpq would look for ~/.pgpass in a home it may not read.
    environment.HOME = account.home
    environment.USER = account.name
    environment.LOGNAME = account.name
  }
  return environment
}
