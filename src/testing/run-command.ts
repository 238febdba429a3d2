import { describeExit } from './exit-status.js'
import { killProcessTree } from './kill-process-tree.js'
import { spawnLogged, type LoggedSpawnOptions } from './spawn-logged.js'
import { TopologyError } from './topology-error.js'

/**
 * A one-shot tool run (initdb, pg_basebackup): what to run, what to call it in
 * errors, and how long it may take.
 *
 * @example
 * const options: CommandOptions = { ...spawnOptions, name: 'initdb for primary', timeoutMs: 30_000 }
 */
export interface CommandOptions extends LoggedSpawnOptions {
  readonly name: string
  readonly timeoutMs: number
}

/**
 * Runs a tool to completion; rejects with a {@link TopologyError} quoting the
 * end of its log when it fails or overruns `timeoutMs` (it is killed then).
 *
 * @example
 * await runCommand({ ...options, command: initdb, args: ['-D', dataDir] })
 */
export async function runCommand(options: CommandOptions): Promise<void> {
  const { child, log, closed } = spawnLogged(options)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    // pg_basebackup streams WAL from a child of its own, which holds the
    // output pipes open; killing only the tool would leave it running.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      killProcessTree(child.pid)
    }
  }, options.timeoutMs)
  const status = await closed
  clearTimeout(timer)
  if (status.code === 0) {
    return
  }
  const what = timedOut ? `did not finish within ${options.timeoutMs} ms` : describeExit(status)
  throw new TopologyError(
    `${options.name} ${what}. Fix the cause shown in the last lines of ${options.logFile}:\n${log.tail()}`,
    { cause: status.error },
  )
}
