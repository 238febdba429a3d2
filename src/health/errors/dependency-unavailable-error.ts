import { RouteMqError } from '../../routemq/plugin-api.js'

/** Why a health gate turned a message away. */
export type GateRejection = 'unhealthy' | 'max-held' | 'max-hold-ms' | 'stopped' | 'spool-full'

/**
 * A `healthGate` did not let a message through: a dependency it names was
 * not healthy (`reject` mode), or, in `hold` mode, too many messages were
 * held already (`maxHeld`), this one waited longer than `maxHoldMs`, or the
 * application stopped while it waited (`'stopped'`), or its spool was full
 * with `whenFull: 'reject'` (`'spool-full'`). The
 * message then fails like any handler error, so the route's error policy
 * decides its fate (acknowledge, redeliver or dead-letter); its handler did
 * not run.
 *
 * @example
 * router.on('orders/{id}', save, { middleware: [healthGate('primary')], onError: { deadLetter: 'dead' } })
 */
export class DependencyUnavailableError extends RouteMqError {
  readonly code = 'DEPENDENCY_UNAVAILABLE'

  constructor(
    readonly route: string,
    readonly dependencies: readonly string[],
    readonly reason: GateRejection,
    detail: string,
  ) {
    super(`${route}: not handled because ${detail}. ${ADVICE[reason]}`)
  }
}

const ADVICE: Readonly<Record<GateRejection, string>> = {
  unhealthy: "Use mode 'hold' to keep such messages until the dependency recovers.",
  'max-held': 'Raise maxHeld, or lower the rate (the broker keeps what the client does not take).',
  'max-hold-ms': 'Raise maxHoldMs if outages last longer, or dead-letter such messages with onError.',
  stopped: 'It stays unacknowledged, so a persistent session gets it again on the next start.',
  'spool-full': "Raise spool.maxBytes, or use whenFull 'wait' so that the broker keeps what the spool cannot.",
}

export function isDependencyUnavailableError(error: unknown): error is DependencyUnavailableError {
  return error instanceof DependencyUnavailableError
}
