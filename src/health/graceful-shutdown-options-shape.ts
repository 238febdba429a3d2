import { constants } from 'node:os'
import { InvalidOptionError } from '../routemq/errors/invalid-option-error.js'
import { finiteNumber, isBoolean, listOf, type OptionCheck, type OptionShape } from '../routemq/option-shape.js'
import { MAX_TIMER_MS } from '../timer-limit.js'
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

const signal: OptionCheck = (value, field) => {
  if (typeof value !== 'string' || !Object.hasOwn(constants.signals, value)) {
    throw new InvalidOptionError(field, "must be a signal name this platform has, such as 'SIGTERM' or 'SIGINT'")
  }
  const why = NOT_LISTENABLE[value]
  if (why !== undefined) throw new InvalidOptionError(field, `${value} ${why}; use 'SIGTERM' (what Kubernetes and systemd send) or 'SIGINT'`)
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
