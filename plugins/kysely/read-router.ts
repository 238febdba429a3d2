import type { Backend } from '../../src/balancing/backend.js'
import type { BackendSet } from '../../src/balancing/backend-set.js'

/** What a `ReadRouter` knows of the replicas, and how it asks them. */
export interface ReadRouterSource<T> {
  readonly set: BackendSet<T>
  /** The newest replay position known for a replica. */
  position(replica: Backend<T>): bigint | undefined
  /** Its lag in ms, as last measured. */
  lagMs(replica: Backend<T>): number | undefined
  /** Where the replica has replayed to right now; `undefined` without an answer within `timeoutMs`. */
  ask(replica: Backend<T>, timeoutMs: number): Promise<bigint | undefined>
}

/** Options of a `ReadRouter`. */
export interface ReadRouterOptions {
  /** The pool's own region: preferred when none serves the message's region. */
  readonly region: string | undefined
  /**
   * How long a read that needs a WAL position waits for a replica to replay
   * it before the caller reads from the primary. Replicas further behind
   * than this (as last measured) are not waited for. 0: no wait.
   */
  readonly waitMs: number
}

/**
 * Pauses between questions while waiting for a replica: none at first (each
 * question is a round trip, and a streaming replica is usually well under a
 * millisecond behind its primary), then growing.
 */
const ASK_GAPS_MS = [0, 0, 0, 1, 1, 2, 4, 8]

/**
 * Chooses the replica for a read, with no server of its own: among the
 * readable replicas, by the engine's strategy, preferring the message's
 * region (then the pool's own). A read that must see a write (`needLsn`)
 * goes only to a replica known to have replayed it; when none is known to,
 * the replicas near enough are asked, again and again for up to `waitMs`,
 * and the first that has it serves. `undefined`: the primary's turn.
 *
 * @example
 * const router = new ReadRouter(source, { region: 'europe', waitMs: 50 })
 * const replica = await router.pick(readable, undefined, writeLsn, 'americas')
 */
export class ReadRouter<T> {
  readonly #source: ReadRouterSource<T>
  readonly #options: ReadRouterOptions

  constructor(source: ReadRouterSource<T>, options: ReadRouterOptions) {
    this.#source = source
    this.#options = options
  }

  /** A replica for a read; a promise only when it has to ask replicas where they are. */
  pick(
    readable: readonly Backend<T>[],
    exclude: ReadonlySet<Backend<T>> | undefined,
    needLsn: bigint | undefined,
    messageRegion: string | undefined,
  ): Backend<T> | undefined | Promise<Backend<T> | undefined> {
    const region = messageRegion ?? this.#options.region
    const prefer = region === undefined ? undefined : (backend: Backend<T>) => backend.region === region
    if (needLsn !== undefined) return this.#pickCaughtUp(readable, exclude, needLsn, prefer)
    const set = this.#source.set
    const picked = set.pickAmong(readable, exclude, prefer)
    // None in the message's region: the pool's own region is the next best.
    const home = this.#options.region
    if (picked && messageRegion !== undefined && picked.region !== messageRegion && home !== undefined && home !== messageRegion && picked.region !== home) {
      return set.pickAmong(readable, exclude, (backend) => backend.region === home) ?? picked
    }
    return picked
  }

  #pickCaughtUp(
    readable: readonly Backend<T>[],
    exclude: ReadonlySet<Backend<T>> | undefined,
    needLsn: bigint,
    prefer: ((backend: Backend<T>) => boolean) | undefined,
  ): Backend<T> | undefined | Promise<Backend<T> | undefined> {
    const caughtUp: Backend<T>[] = []
    const waitable: Backend<T>[] = []
    const now = Date.now()
    for (const backend of readable) {
      // An ejected or dead replica would only be asked in vain for the whole wait.
      if (exclude?.has(backend) || !backend.isAvailable(now)) continue
      const replay = this.#source.position(backend)
      if (replay !== undefined && replay >= needLsn) caughtUp.push(backend)
      else if ((this.#source.lagMs(backend) ?? 0) <= this.#options.waitMs) waitable.push(backend)
    }
    const fit = caughtUp.length > 0 ? this.#source.set.pickAmong(caughtUp, undefined, prefer) : undefined
    if (fit || waitable.length === 0 || this.#options.waitMs <= 0) return fit
    return this.#waitForOne(waitable, needLsn, prefer)
  }

  /** Asks `candidates` where they are until one has `needLsn`, for up to `waitMs` (a replica that does not answer holds nothing past it). */
  async #waitForOne(candidates: Backend<T>[], needLsn: bigint, prefer: ((backend: Backend<T>) => boolean) | undefined): Promise<Backend<T> | undefined> {
    const waitMs = this.#options.waitMs
    const deadline = Date.now() + waitMs
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<typeof EXPIRED>((resolve) => (timer = setTimeout(() => resolve(EXPIRED), waitMs)))
    try {
      for (let round = 0; ; round++) {
        const gap = ASK_GAPS_MS[Math.min(round, ASK_GAPS_MS.length - 1)]!
        if (gap > 0 && (await Promise.race([pause(gap), expired])) === EXPIRED) return undefined
        const asked = Promise.all(candidates.map((replica) => this.#source.ask(replica, Math.max(1, deadline - Date.now()))))
        const answers = await Promise.race([asked, expired])
        if (answers === EXPIRED) return undefined
        const caughtUp = candidates.filter((_, i) => answers[i] !== undefined && answers[i] >= needLsn)
        if (caughtUp.length > 0) return this.#source.set.pickAmong(caughtUp, undefined, prefer)
      }
    } finally {
      clearTimeout(timer)
    }
  }
}

const EXPIRED = Symbol('expired')

function pause(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms))
}
