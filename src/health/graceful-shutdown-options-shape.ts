import { constants } from 'node:os'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import { finiteNumber, isBoolean, listOf, type OptionCheck, type OptionShape } from '../routemq/plugin-api.js'
import { MAX_TIMER_MS } from '../routemq/plugin-api.js'
import type { GracefulShutdownOptions } from './graceful-shutdown.js'

/** Why a signal cannot start a graceful shutdown, for those Node can be asked to listen on but that never (safely) reach a listener. */
const NOT_LISTENABLE: Readonly<Record<string, string>> = {
  SIGKILL: 'cannot be caught: the kernel ends the process without running any handler',
  SIGSTOP: 'cannot be caught: the kernel pauses the process without running any handler',
  // Node's documentation: after a real fault the process cannot run JavaScript listeners safely and may hang.
  SIGBUS: 'reports a fault in the process, which cannot shut down gracefully after it',
  SIGFPE: 'reports a fault in the process, which cannot shut down gracefully after it',
  SIGILL: 'reports a fault in the process, which cannot shut down gracefully after it',
  SIGSEGV: 'reports a fault in the process, which cannot shut down gracefully after it',
}

/**
 * The signals that ask a process to stop: SIGTERM (Kubernetes, systemd, docker stop), SIGINT (Ctrl-C),
 * SIGHUP (the terminal closed), SIGQUIT (Ctrl-\), SIGUSR2 (nodemon and similar restarters) and, on
 * Windows, SIGBREAK (Ctrl-Break).
 */
const STOP_SIGNALS: ReadonlySet<string> = new Set(['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGBREAK'])

/** Why a signal that does not ask for a stop is refused, for those one might list by mistake. */
const NOT_A_STOP: Readonly<Record<string, string>> = {
  SIGCHLD: 'is sent whenever a child process ends (a health check script, say), so the app would stop then',
  SIGCLD: 'is sent whenever a child process ends (a health check script, say), so the app would stop then',
  SIGWINCH: 'is sent whenever the terminal is resized',
  SIGCONT: 'resumes a paused process; it asks for no stop',
  SIGTSTP: 'asks a process to pause (Ctrl-Z), and the shell expects it back on SIGCONT, not gone',
  SIGTTIN: 'pauses a background process that reads the terminal',
  SIGTTOU: 'pauses a background process that writes to the terminal',
  SIGURG: 'reports urgent data on a socket',
  SIGPIPE: 'reports a write to a closed pipe or socket, which Node turns into an error of that write',
  SIGUSR1: 'starts Node\'s inspector (debugger), which Node keeps listening on',
  SIGABRT: 'reports that the process aborted, which cannot shut down gracefully after it',
  SIGTRAP: 'is a debugger\'s breakpoint trap',
  SIGSYS: 'reports a bad system call, a fault the process cannot shut down gracefully after',
  SIGALRM: 'is a timer\'s alarm, not a request to stop',
  SIGVTALRM: 'is a timer\'s alarm, not a request to stop',
  SIGPROF: 'is a profiler\'s timer',
  SIGIO: 'reports that a file descriptor is ready',
  SIGPOLL: 'reports that a file descriptor is ready',
  SIGXCPU: 'reports the CPU time limit reached',
  SIGXFSZ: 'reports the file size limit reached',
}

const signal: OptionCheck = (value, field) => {
  if (typeof value !== 'string' || !Object.hasOwn(constants.signals, value)) {
    throw new InvalidOptionError(field, "must be a signal name this platform has, such as 'SIGTERM' or 'SIGINT'")
  }
  if (STOP_SIGNALS.has(value)) return
  const why = NOT_LISTENABLE[value] ?? NOT_A_STOP[value] ?? 'does not ask a process to stop'
  throw new InvalidOptionError(
    field,
    `${value} ${why}; list only signals that ask for a stop: 'SIGTERM' (what Kubernetes and systemd send), 'SIGINT', 'SIGHUP', 'SIGQUIT' or 'SIGUSR2'${
      Object.hasOwn(constants.signals, 'SIGBREAK') ? " or 'SIGBREAK'" : ''
    }`,
  )
}

const signalList = listOf(signal)

const signals: OptionCheck = (value, field) => {
  signalList(value, field)
  if (value === undefined) return
  // One listener per listing: a signal listed twice would run the shutdown and, at once, the second signal's immediate exit.
  const names = value as readonly string[]
  names.forEach((name, index) => {
    if (names.indexOf(name) !== index) throw new InvalidOptionError(`${field}[${index}]`, `${name} is listed twice; list each signal once`)
  })
}

/** The keys and types of `GracefulShutdownOptions`. */
export const GRACEFUL_SHUTDOWN_OPTIONS_SHAPE: OptionShape<GracefulShutdownOptions> = {
  signals,
  drainDelayMs: finiteNumber(0, MAX_TIMER_MS),
  exit: isBoolean,
}
