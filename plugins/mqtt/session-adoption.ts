import { randomBytes } from 'node:crypto'
import type { Logger } from '../../src/routemq/plugin-api.js'
import type { InboundMessage, MessageProperties, MessageReceiver } from '../../src/routemq/plugin-api.js'
import { raceTimeout } from '../../src/routemq/plugin-api.js'
import { BrokerConnection, type BrokerConnectionOptions } from './broker-connection.js'
import type { ControlTopics } from './control-topics.js'
import type { SubscriptionSync } from './subscription-sync.js'

/** How an adoption ended. */
export type AdoptionOutcome =
  /** Everything the session held was handled and the session ended. */
  | 'drained'
  /** The broker no longer had the session; its presence message was cleared. */
  | 'absent'
  /** The connection was taken over (the owner came back, or another instance adopted it) or lost: the session stays. */
  | 'interrupted'
  /** The session delivered a message none of this app's routes subscribe to: it belongs to another app; it stays. */
  | 'foreign'
  /** The application left a message unacknowledged (stopping, or a `'redeliver'` policy): the session stays so that it is delivered again. */
  | 'withheld'

/** Options of `adoptSession`. */
export interface AdoptionOptions {
  /** The connection settings of the adopted session: its client id, and the same will its owner had. */
  readonly connection: Omit<BrokerConnectionOptions, 'receiver'>
  readonly topics: ControlTopics
  readonly sync: SubscriptionSync
  /** The pool's own filters the orphan subscribed to (presence, its ready topic, broker statistics), dropped too. */
  readonly ownFilters: readonly string[]
  /** The application's receiver: the adopted session's messages are handled like any other. */
  readonly receiver: MessageReceiver
  readonly log: Logger
  /** Longest wait for the backlog to arrive and be handled. */
  readonly drainTimeoutMs: number
  readonly closeTimeoutMs: number
  /** Cuts the adoption short (the pool is stopping): the session stays for another instance. */
  readonly signal: AbortSignal
}

/**
 * Drains the persistent session of an app instance that went away: connects
 * with its client id (the broker resends what was in flight to it and
 * delivers what it queued), unsubscribes the routes so that no new message is
 * routed to it, publishes a marker to itself (which arrives after everything
 * queued before it), lets the application handle and acknowledge all of it,
 * then ends the session and clears its presence message.
 *
 * @example
 * const outcome = await adoptSession({ connection, topics, sync, receiver, log, drainTimeoutMs: 60_000, closeTimeoutMs: 5000 })
 */
export async function adoptSession(options: AdoptionOptions): Promise<AdoptionOutcome> {
  const { topics, sync, log } = options
  const sessionId = options.connection.clientId
  const broker = options.connection.endpoint.id
  const barrierTopic = topics.barrier(sessionId)
  const nonce = randomBytes(8).toString('hex')
  let barrierSeen: () => void = noop
  const barrier = new Promise<void>((resolve) => (barrierSeen = resolve))
  let foreign: string | undefined
  let withheld = 0
  // eslint-disable-next-line prefer-const -- declared before `receiver`, which reads it and may run while the connection opens (a const there would be in its temporal dead zone)
  let connection: BrokerConnection | undefined
  const receiver = (message: InboundMessage): void => {
    if (topics.owns(message.topic) || message.topic.startsWith('$')) {
      // The pool's own messages, and broker statistics the orphan subscribed to.
      if (message.topic === barrierTopic && message.payload.toString() === nonce) barrierSeen()
      message.settle(true)
    } else if (sync.matches(message.topic)) {
      options.receiver({
        ...message,
        // Its subscription identifiers are the orphan's routes' (another version may number them otherwise):
        // the routes are matched by topic here.
        properties: withoutSubscriptionIdentifier(message.properties),
        settle: (acknowledge) => {
          if (!acknowledge) withheld++
          message.settle(acknowledge)
        },
      })
    } else {
      // Left unacknowledged: the session keeps it for its rightful owner.
      message.settle(false)
      foreign ??= message.topic
      void connection?.close(0)
    }
  }
  if (options.signal.aborted) return 'interrupted'
  connection = await BrokerConnection.open({ ...options.connection, receiver })
  // A message may have come with the CONNACK, before the connection was known.
  if (foreign) {
    await connection.close(0)
    return 'foreign'
  }
  const lost = new Promise<'interrupted'>((resolve) => connection.onClose(() => resolve('interrupted')))
  const abort = (): void => void connection.close(0)
  options.signal.addEventListener('abort', abort)
  if (options.signal.aborted) abort()
  const interrupted = (): AdoptionOutcome => (foreign ? 'foreign' : 'interrupted')
  try {
    if (!connection.sessionPresent) {
      await connection.publishNow(topics.member(sessionId), '', { qos: 1, retain: true })
      await connection.close(options.closeTimeoutMs, { endSession: true })
      return 'absent'
    }
    log.info('adopting the session of an instance that went away', { broker, session: sessionId })
    const drained = (async (): Promise<'drained'> => {
      await connection.unsubscribe([...sync.filters, ...options.ownFilters])
      await connection.subscribe([{ topic: barrierTopic, qos: 1 }], options.connection.protocolVersion)
      await connection.publishNow(barrierTopic, nonce, { qos: 1 })
      await barrier
      await connection.inboundSettled()
      return 'drained'
    })()
    // Lost connections fail the steps too; the race below has the answer.
    drained.catch(noop)
    const outcome = await raceTimeout(Promise.race([drained, lost]), options.drainTimeoutMs, () => 'timeout' as const)
    if (outcome === 'drained' && foreign) {
      await connection.close(0)
      return 'foreign'
    }
    if (outcome === 'drained' && withheld > 0) {
      log.warn('an adopted session kept messages the application left unacknowledged; it stays for a later attempt', { broker, session: sessionId, withheld })
      await connection.close(options.closeTimeoutMs)
      return 'withheld'
    }
    if (outcome !== 'drained') {
      if (outcome === 'timeout') log.warn('adopting a session did not finish in time; it stays for a later attempt', { broker, session: sessionId })
      await connection.close(0)
      return outcome === 'timeout' ? 'interrupted' : interrupted()
    }
    await connection.publishNow(topics.member(sessionId), '', { qos: 1, retain: true })
    await connection.close(options.closeTimeoutMs, { endSession: true })
    log.info('adopted session drained and ended', { broker, session: sessionId })
    return 'drained'
  } catch (error) {
    if (!connection.open) return interrupted()
    await connection.close(0)
    throw error
  } finally {
    options.signal.removeEventListener('abort', abort)
    if (foreign) log.error('a session under this group delivered a message no route subscribes to; it belongs to another app. Give each app its own mqtt.group', { broker, session: sessionId, topic: foreign.slice(0, 200) })
  }
}

function noop(): void {}

function withoutSubscriptionIdentifier(properties: MessageProperties | undefined): MessageProperties | undefined {
  if (properties?.subscriptionIdentifier === undefined) return properties
  const { subscriptionIdentifier: _omitted, ...rest } = properties
  return rest
}
