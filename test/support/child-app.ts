import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

/** One JSON line a child app reported. */
export type ChildEvent = Readonly<Record<string, unknown>> & { readonly event: string }

/**
 * A test app running in its own node process, reporting JSON lines on stdout.
 *
 * @example
 * const app = ChildApp.start('session-app.js', [url, 'id-1', 'hang'])
 * await app.next((e) => e.event === 'ready')
 */
export class ChildApp {
  readonly #child: ChildProcess
  readonly #events: ChildEvent[] = []
  readonly #waiters: { match: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }[] = []
  readonly #stderr: string[] = []
  readonly #exited: Promise<number | null>

  private constructor(script: string, args: readonly string[]) {
    const path = fileURLToPath(new URL(script, import.meta.url))
    this.#child = spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#exited = once(this.#child, 'exit').then(([code]) => code as number | null)
    createInterface({ input: this.#child.stdout! }).on('line', (line) => this.#push(JSON.parse(line) as ChildEvent))
    this.#child.stderr!.on('data', (chunk: Buffer) => this.#stderr.push(chunk.toString()))
  }

  /** Starts `script` (a file next to this one in test/support) with `args`. */
  static start(script: string, args: readonly string[]): ChildApp {
    return new ChildApp(script, args)
  }

  /** Every event reported so far. */
  get events(): readonly ChildEvent[] {
    return this.#events
  }

  /** What the process wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr.join('')
  }

  /** The first event, past or future, that `match` accepts; rejects if the process exits first. */
  next(match: (event: ChildEvent) => boolean): Promise<ChildEvent> {
    const seen = this.#events.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      this.#waiters.push({ match, resolve })
      void this.#exited.then((code) => reject(new Error(`child exited (${code}) first; stderr: ${this.#stderr.join('')}`)))
    })
  }

  /** Sends `signal` and resolves with the exit code once the process is gone. */
  async signal(signal: NodeJS.Signals): Promise<number | null> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal)
    return this.#exited
  }

  #push(event: ChildEvent): void {
    this.#events.push(event)
    for (const waiter of [...this.#waiters]) {
      if (waiter.match(event)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1)
        waiter.resolve(event)
      }
    }
  }
}
