import { createWriteStream, type WriteStream } from 'node:fs'
import type { Readable } from 'node:stream'

/**
 * Copies a child's output into a log file, keeps its last lines in memory for
 * error messages, and reports each complete line to listeners, which is how
 * readiness lines such as "ready to accept connections" are awaited.
 *
 * @example
 * const log = new ProcessLog('/tmp/rmq-x/broker-1/mosquitto.log')
 * log.follow(child.stderr)
 * log.onLine((line) => { if (line.includes('running')) ready() })
 * await log.close()
 */
export class ProcessLog {
  readonly #file: WriteStream
  readonly #tail: string[] = []
  readonly #tailLength: number
  readonly #listeners = new Set<(line: string) => void>()
  readonly #closed: Promise<void>

  constructor(path: string, tailLength = 20) {
    this.#tailLength = tailLength
    this.#file = createWriteStream(path, { flags: 'a' })
    this.#closed = new Promise((resolve) => {
      this.#file.once('close', resolve)
      // A log that cannot be written must not crash the test run; the
      // in-memory tail still carries the lines into error messages.
      this.#file.once('error', () => resolve())
    })
  }

  /**
   * Reads `stream` until it ends, line by line.
   *
   * @example
   * log.follow(child.stdout)
   */
  follow(stream: Readable | null): void {
    if (stream === null) {
      return
    }
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      this.#write(chunk)
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        this.#addLine(line)
      }
    })
    stream.once('end', () => {
      if (partial !== '') {
        this.#addLine(partial)
        partial = ''
      }
    })
  }

  /**
   * Calls `listener` with every complete line from now on; returns a function
   * that unsubscribes.
   *
   * @example
   * const unsubscribe = log.onLine((line) => console.log(line))
   */
  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /**
   * The last lines seen, joined by newlines, each indented for quoting.
   *
   * @example
   * throw new TopologyError(`postgres failed:\n${log.tail()}`)
   */
  tail(): string {
    return this.#tail.length === 0 ? '    (no output)' : this.#tail.map((line) => `    ${line}`).join('\n')
  }

  /**
   * Flushes and closes the file; resolves once its descriptor is released.
   *
   * @example
   * await log.close()
   */
  close(): Promise<void> {
    if (!this.#file.writableEnded) {
      this.#file.end()
    }
    return this.#closed
  }

  #write(chunk: string): void {
    if (!this.#file.writableEnded && !this.#file.destroyed) {
      this.#file.write(chunk)
    }
  }

  #addLine(line: string): void {
    this.#tail.push(line)
    if (this.#tail.length > this.#tailLength) {
      this.#tail.shift()
    }
    for (const listener of this.#listeners) {
      listener(line)
    }
  }
}
