import { RouteMqError } from '../routemq/errors/route-mq-error.js'

/**
 * An executable the local test topology needs (mosquitto, nats-server,
 * postgres, initdb, pg_basebackup) is not installed or not where the launcher
 * looked.
 *
 * @example
 * try { await startTopology({ brokers: 1 }) } catch (e) {
 *   if (e instanceof MissingBinaryError) console.error(e.binary, e.message)
 * }
 */
export class MissingBinaryError extends RouteMqError {
  readonly code = 'MISSING_BINARY'

  constructor(
    readonly binary: string,
    readonly searched: readonly string[],
    installHint: string,
  ) {
    super(
      `Cannot find the "${binary}" executable (looked in ${searched.length > 0 ? searched.join(', ') : 'no directories'}). ` +
        `Install it with \`${installHint}\`, or point the topology's \`binaries\` option at it.`,
    )
  }
}
