import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import type { RootDatabase } from 'lmdb'
import type * as Lmdb from 'lmdb'
import type { MessageProperties, QoS } from '../../routemq/plugin-api.js'
import { InvalidOptionError } from '../../routemq/plugin-api.js'

/** One message as the spool keeps it: what the dispatcher needs to run it again through its route. */
export interface SpooledMessage {
  /** The route's pattern, so that a route's messages can be told apart from another's. */
  readonly route: string
  readonly topic: string
  readonly payload: Buffer
  readonly qos: QoS
  readonly retain: boolean
  /** Without `subscriptionIdentifier`: the replayed copy is the one to handle, whatever the identifiers say. */
  readonly properties: Omit<MessageProperties, 'subscriptionIdentifier'> | undefined
  /** The broker connection that delivered it (a label), for replies through the device's broker. */
  readonly broker: string
  /** When it was spooled (epoch ms). */
  readonly spooledAt: number
}

/** A spooled message with its key: arrival order over the whole spool. */
export interface SpoolEntry {
  readonly key: number
  readonly message: SpooledMessage
  readonly bytes: number
}

/** Directories open in this process: two spools on one directory would replay each other's messages. */
const openPaths = new Set<string>()

/**
 * A durable, ordered store of messages on disk: LMDB (the `lmdb` package,
 * prebuilt binaries, no build step), keyed by an arrival number. `append`
 * resolves only once the message is flushed to disk, so a caller may
 * acknowledge it to the broker then; a process killed afterwards finds it
 * again when the same directory is opened. Counts and bytes are kept in
 * memory, read from the store at open.
 *
 * @example
 * const spool = MessageSpool.open('/var/lib/app/spool')
 * const key = await spool.append(message)
 * for (const entry of spool.entriesAfter(0, 64)) ...
 * await spool.remove(key)
 */
export class MessageSpool {
  readonly path: string
  readonly #db: RootDatabase<SpooledMessage, number>
  #nextKey: number
  #count = 0
  #bytes = 0
  /** Arrival time of each message still in the spool, in key order: the oldest is the first. */
  readonly #spooledAt = new Map<number, number>()
  readonly #routeCounts = new Map<string, number>()
  /** Keys reserved and not yet on disk. */
  readonly #unwritten = new Set<number>()
  #closed = false

  private constructor(path: string, db: RootDatabase<SpooledMessage, number>) {
    this.path = path
    this.#db = db
    let last = 0
    for (const { key, value } of db.getRange({})) {
      this.#track(key, value, messageBytes(value))
      last = key
    }
    this.#nextKey = last + 1
  }

  /** Opens (creating it if need be) the spool in directory `path`, with what a previous run left there. */
  static open(path: string, field = 'spool.path'): MessageSpool {
    const absolute = resolve(path)
    if (openPaths.has(absolute)) throw new InvalidOptionError(field, `another spool of this process uses ${absolute}; give each gate its own directory`)
    try {
      mkdirSync(absolute, { recursive: true })
    } catch (error) {
      throw new InvalidOptionError(field, `cannot create the directory ${absolute} (${(error as NodeJS.ErrnoException).code ?? String(error)}); give a writable directory`)
    }
    let db: RootDatabase<SpooledMessage, number>
    try {
      db = lmdb().open<SpooledMessage, number>({ path: absolute, compression: false, cache: false })
    } catch (error) {
      throw new InvalidOptionError(field, `cannot open a spool in ${absolute} (${(error as Error).message}); give a directory this process may write, used by no other program`)
    }
    openPaths.add(absolute)
    return new MessageSpool(absolute, db)
  }

  /** Messages in the spool now. */
  get count(): number {
    return this.#count
  }

  /** Bytes of the messages in the spool (topics, payloads and properties; not the store's own overhead). */
  get bytes(): number {
    return this.#bytes
  }

  /** When the oldest message still in the spool was spooled (epoch ms), if any. */
  get oldestSpooledAt(): number | undefined {
    for (const at of this.#spooledAt.values()) return at
    return undefined
  }

  /** Messages of `route` in the spool now. */
  countOf(route: string): number {
    return this.#routeCounts.get(route) ?? 0
  }

  /** The bytes `message` takes in the spool's count (what `maxBytes` limits). */
  static bytesOf(message: SpooledMessage): number {
    return messageBytes(message)
  }

  /**
   * Adds `message` after everything spooled before (its key is taken now,
   * in call order) and resolves with the key once it is flushed to disk.
   * On failure it is forgotten again.
   */
  async append(message: SpooledMessage): Promise<number> {
    const key = this.reserve(message)
    try {
      await this.write(key, message)
    } catch (error) {
      this.forget(key, message)
      throw error
    }
    return key
  }

  /**
   * Takes the next key for `message`, in call order, and counts it (count,
   * bytes, its route) from now on; `write` puts it on disk, as often as it
   * takes. Entries after an unwritten one are not read until it is written,
   * so that nothing overtakes it.
   */
  reserve(message: SpooledMessage): number {
    this.#assertOpen()
    const key = this.#nextKey++
    this.#track(key, message, messageBytes(message))
    this.#unwritten.add(key)
    return key
  }

  /** Puts a reserved message on disk and resolves once it is flushed; may be called again after it failed. */
  async write(key: number, message: SpooledMessage): Promise<void> {
    this.#assertOpen()
    await this.#db.put(key, message)
    await this.#db.flushed
    this.#unwritten.delete(key)
  }

  /** Gives up a reserved message that was not written. */
  forget(key: number, message: SpooledMessage): void {
    if (!this.#unwritten.delete(key)) return
    this.#untrack(key, message.route, messageBytes(message))
  }

  /**
   * Up to `limit` entries with a key above `after`, in key order: not one
   * removed already (even before its removal is committed), and none at or
   * after a reserved one not yet written.
   */
  entriesAfter(after: number, limit: number): SpoolEntry[] {
    this.#assertOpen()
    const entries: SpoolEntry[] = []
    let firstUnwritten = Number.POSITIVE_INFINITY
    for (const key of this.#unwritten) firstUnwritten = Math.min(firstUnwritten, key)
    for (const { key, value } of this.#db.getRange({ start: after + 1 })) {
      if (key >= firstUnwritten) break
      if (!this.#spooledAt.has(key)) continue
      entries.push({ key, message: value, bytes: messageBytes(value) })
      if (entries.length >= limit) break
    }
    return entries
  }

  /** Removes the entry; resolves once the removal is committed. */
  async remove(entry: SpoolEntry): Promise<void> {
    this.#assertOpen()
    if (!this.#spooledAt.has(entry.key)) return
    this.#untrack(entry.key, entry.message.route, entry.bytes)
    await this.#db.remove(entry.key)
  }

  /** Closes the store once pending writes are committed. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    try {
      await this.#db.flushed
      await this.#db.close()
    } finally {
      openPaths.delete(this.path)
    }
  }

  #track(key: number, message: SpooledMessage, bytes: number): void {
    this.#count++
    this.#bytes += bytes
    this.#spooledAt.set(key, message.spooledAt)
    this.#routeCounts.set(message.route, (this.#routeCounts.get(message.route) ?? 0) + 1)
  }

  #untrack(key: number, route: string, bytes: number): void {
    this.#count--
    this.#bytes -= bytes
    this.#spooledAt.delete(key)
    const left = (this.#routeCounts.get(route) ?? 1) - 1
    if (left > 0) this.#routeCounts.set(route, left)
    else this.#routeCounts.delete(route)
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error(`the spool in ${this.path} is closed`)
  }
}

function messageBytes(message: SpooledMessage): number {
  let bytes = message.payload.length + Buffer.byteLength(message.topic) + Buffer.byteLength(message.route) + Buffer.byteLength(message.broker)
  if (message.properties) bytes += Buffer.byteLength(JSON.stringify(message.properties))
  return bytes
}

// lmdb is a native module only spooling gates use: required on the first open
// (synchronously, as `open` is; lmdb ships a CommonJS build), so importing the
// health entry point or the package does not load it.
let lmdbModule: typeof Lmdb | undefined
function lmdb(): typeof Lmdb {
  lmdbModule ??= createRequire(import.meta.url)('lmdb') as typeof Lmdb
  return lmdbModule
}
