import { parkingLotOf, type MessageContext } from './message-context.js'

/** What runs messages and counts them against a concurrency limit: the dispatcher. */
export interface ParkingLot {
  /** The message no longer takes a handler slot. */
  park(): void
  /** It takes one again. */
  unpark(): void
}

/**
 * Frees the handler slot of a message that waits on something outside the
 * application (a health gate holding it), so other messages run meanwhile;
 * call the returned function, exactly once, when it goes on. A message not
 * run by a dispatcher has no slot: then both do nothing.
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
