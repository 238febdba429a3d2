import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ScenarioAppSettings } from './scenario-app.js'

const SCRIPT = fileURLToPath(new URL('./scenario-app.js', import.meta.url))

/**
 * One instance of the scenario app in its own node process, so that it can be
 * SIGKILLed or SIGTERMed for real. Its log (stderr) goes to `logFile`.
 *
 * @example
 * const app = await AppProcess.start('app-1', settings, '/tmp/x/app-1.log')
 * await app.signal('SIGKILL')
 */
export class AppProcess {
  readonly name: string
  readonly settings: ScenarioAppSettings
  readonly #child: ChildProcess
  readonly #exited: Promise<number | null>
  readonly #log: WriteStream
  readonly #events: Record<string, unknown>[] = []

  private constructor(name: string, settings: ScenarioAppSettings, logFile: string) {
    this.name = name
    this.settings = settings
    this.#log = createWriteStream(logFile, { flags: 'a' })
    // A heap bound the scenario sets is V8's own limit too: past it the instance dies, and its losses show.
    const heap = settings.heapLimitMb === undefined ? [] : [`--max-old-space-size=${settings.heapLimitMb}`]
    this.#child = spawn(process.execPath, [...heap, SCRIPT], {
      env: { ...process.env, SCENARIO_APP: JSON.stringify(settings) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#child.stderr!.pipe(this.#log)
    this.#exited = once(this.#child, 'exit').then(([code]) => code as number | null)
  }

  /** Starts the process and resolves once the app reported it started (every route subscribed). */
  static async start(name: string, settings: ScenarioAppSettings, logFile: string, timeoutMs = 60_000): Promise<AppProcess> {
    const app = new AppProcess(name, settings, logFile)
    await app.#ready(timeoutMs)
    return app
  }

  /** Everything the app reported (JSON lines on its stdout). */
  get events(): readonly Record<string, unknown>[] {
    return this.#events
  }

  /** The broker the app is connected to in failover mode, as it last reported. */
  get activeBroker(): string | undefined {
    for (let i = this.#events.length - 1; i >= 0; i--) {
      const event = this.#events[i]!
      if (event.event === 'active') return event.broker as string
      if (event.event === 'ready') return event.active as string | undefined
    }
    return undefined
  }

  get pid(): number | undefined {
    return this.#child.pid
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** Sends `signal` and resolves with the exit code once the process is gone. */
  async signal(signal: NodeJS.Signals): Promise<number | null> {
    if (this.running) this.#child.kill(signal)
    const code = await this.#exited
    this.#log.end()
    return code
  }

  async #ready(timeoutMs: number): Promise<void> {
    const lines = createInterface({ input: this.#child.stdout! })
    const ready = new Promise<void>((resolve, reject) => {
      lines.on('line', (line) => {
        const event = JSON.parse(line) as Record<string, unknown>
        this.#events.push(event)
        if (event.event === 'ready') resolve()
      })
      void this.#exited.then((code) => reject(new Error(`${this.name} exited (${code}) before it was ready`)))
      setTimeout(() => reject(new Error(`${this.name} was not ready within ${timeoutMs} ms`)), timeoutMs).unref()
    })
    try {
      await ready
    } catch (error) {
      await this.signal('SIGKILL')
      throw error
    }
  }
}
