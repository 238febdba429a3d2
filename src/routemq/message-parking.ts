import { parkingLotOf, type MessageContext } from './message-context.js'

/** What runs messages and counts them against a concurrency limit: the dispatcher. */
export interface ParkingLot {
  /** The message no longer takes a handler slot. */
  park(): void
  /** It takes one again, at once (over the limit for a moment, if need be). */
  unpark(): void
}

/**
 * Frees the handler slot of a message that waits on something outside the
 * application (a health gate holding it), so other messages run meanwhile.
 * Call the returned function, once, when it goes on: it takes a slot again
 * at once, even over `maxInFlight` for a moment. (Waiting for a free slot
 * instead could deadlock: a middleware before the waiting one may hold a
 * lock that the messages in the slots wait for.) A message not run by a
 * dispatcher has no slot: then both do nothing.
 *
 * @example
 * const unpark = parkMessage(ctx)
 * try { await dependencyRecovered } finally { unpark() }
 */
export function parkMessage(ctx: MessageContext): () => void {
  const lot = parkingLotOf(ctx)
  if (!lot) return noop
  lot.park()
  let done = false
  return () => {
    if (done) return
    done = true
    lot.unpark()
  }
}

function noop(): void {}
