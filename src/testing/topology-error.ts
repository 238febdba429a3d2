import { RouteMqError } from '../routemq/errors/route-mq-error.js'

/**
 * A local test topology could not be started, stopped or driven: a process
 * exited or timed out before it was ready, an option is inconsistent, or the
 * OS lacks something the launcher needs. The message names the process and
 * quotes the last lines of its log file.
 *
 * @example
 * try { await startTopology({ replicas: 1, postgres: false }) } catch (e) {
 *   if (e instanceof TopologyError) console.error(e.message)
 * }
 */
export class TopologyError extends RouteMqError {
  readonly code = 'TOPOLOGY_FAILED'
}
