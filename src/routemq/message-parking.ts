import { parkingLotOf, type MessageContext } from './message-context.js'

/** What runs messages and counts them against a concurrency limit: the dispatcher. */
export interface ParkingLot {
  /** The message no longer takes a handler slot. */
  park(): void
  /** It takes one again; resolves once one is free (before messages that wait to start). */
  unpark(): Promise<void>
}

/**
 * Frees the handler slot of a message that waits on something outside the
 * application (a health gate holding it), so other messages run meanwhile.
 * Call the returned function, once, when it may go on, and go on when its
 * promise resolves: it waits for a free slot, ahead of messages not yet
 * started, so released messages never run more handlers than `maxInFlight`
 * allows. A message not run by a dispatcher has no slot: then both do nothing.
 *
 * @example
 * const unpark = parkMessage(ctx)
 * await dependencyRecovered
 * await unpark()
 */
export function parkMessage(ctx: MessageContext): () => Promise<void> {
  const lot = parkingLotOf(ctx)
  if (!lot) return resolved
  lot.park()
  let taken: Promise<void> | undefined
  return () => (taken ??= lot.unpark())
}

function resolved(): Promise<void> {
  return Promise.resolve()
}
