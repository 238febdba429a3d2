/** What the walk needs from a MaxMind DB's metadata. */
export interface SearchTreeShape {
  readonly nodeCount: number
  readonly recordSize: number
  readonly ipVersion: number
}

/** What a walk found: a record's pointer (greater than the node count), or `NOT_FOUND`. */
export const NOT_FOUND = 0

/**
 * The binary search tree of a MaxMind DB (format 2.0), walked bit by bit
 * from an address already parsed to numbers. The resolver walks it itself,
 * instead of asking `Reader.get`, to learn which record an address lands on
 * without parsing the address again or decoding the record: records are
 * shared by many networks, so each is decoded once and then remembered by
 * its pointer.
 *
 * @example
 * const tree = new SearchTree(bytes, reader.metadata)
 * tree.find4(0x51_02_45_a0) // the pointer of 81.2.69.160's record, or NOT_FOUND
 */
export class SearchTree {
  readonly #db: Buffer
  readonly #nodeCount: number
  readonly #nodeBytes: number
  readonly #recordSize: number
  readonly #ipv4Root: number
  readonly #ipv6: boolean

  constructor(db: Buffer, shape: SearchTreeShape) {
    if (shape.recordSize !== 24 && shape.recordSize !== 28 && shape.recordSize !== 32) {
      throw new Error(`record size ${shape.recordSize} is not one of 24, 28, 32`)
    }
    this.#db = db
    this.#nodeCount = shape.nodeCount
    this.#recordSize = shape.recordSize
    this.#nodeBytes = shape.recordSize / 4
    this.#ipv6 = shape.ipVersion === 6
    // In an IPv6 tree, IPv4 addresses are ::a.b.c.d: their subtree is 96 zero bits down.
    let node = 0
    for (let depth = 0; this.#ipv6 && depth < 96 && node < this.#nodeCount; depth++) node = this.#child(node, 0)
    this.#ipv4Root = node
  }

  /** The record of an IPv4 address given as an unsigned 32-bit number. */
  find4(address: number): number {
    let node = this.#ipv4Root
    for (let depth = 0; depth < 32 && node < this.#nodeCount; depth++) node = this.#child(node, (address >>> (31 - depth)) & 1)
    return node > this.#nodeCount ? node : NOT_FOUND
  }

  /** The record of an IPv6 address given as its eight 16-bit groups; an IPv4-only tree has none. */
  find6(groups: ArrayLike<number>): number {
    if (!this.#ipv6) return NOT_FOUND
    let node = 0
    for (let depth = 0; depth < 128 && node < this.#nodeCount; depth++) node = this.#child(node, (groups[depth >> 4]! >>> (15 - (depth & 15))) & 1)
    return node > this.#nodeCount ? node : NOT_FOUND
  }

  #child(node: number, bit: number): number {
    const db = this.#db
    const at = node * this.#nodeBytes
    switch (this.#recordSize) {
      case 24: {
        const o = at + bit * 3
        return (db[o]! << 16) | (db[o + 1]! << 8) | db[o + 2]!
      }
      case 28: {
        // Left: bytes 0-2 with the high nibble of byte 3 on top; right: bytes 4-6 with its low nibble.
        const middle = db[at + 3]!
        const o = at + bit * 4
        const high = bit === 0 ? middle >>> 4 : middle & 0x0f
        return high * 0x1000000 + ((db[o]! << 16) | (db[o + 1]! << 8) | db[o + 2]!)
      }
      default:
        return db.readUInt32BE(at + bit * 4)
    }
  }
}
