import { RouteMqError } from '../../../src/routemq/plugin-api.js'

/**
 * The brokers are not what the configuration takes them for, in a way that
 * would lose messages: failover mode over brokers that do not share messages
 * (the app would miss the traffic of every broker it is not connected to),
 * or shared subscriptions on brokers that do not implement `$share/`.
 *
 * @example
 * await app.start().catch((e) => { if (isBrokerTopologyError(e)) console.error(e.message) })
 */
export class BrokerTopologyError extends RouteMqError {
  readonly code = 'BROKER_TOPOLOGY'
}

export function isBrokerTopologyError(error: unknown): error is BrokerTopologyError {
  return error instanceof BrokerTopologyError
}
