import { HealthTracker, type HealthState } from '../balancing/health-tracker.js'
import { InvalidOptionError } from '../routemq/plugin-api.js'
import { safeLogger, silentLogger, type Logger } from '../routemq/plugin-api.js'
import { checkOptions, finiteNumber, isLogger, type OptionShape } from '../routemq/plugin-api.js'
import { raceTimeout } from '../routemq/plugin-api.js'
import { MAX_TIMER_MS } from '../routemq/plugin-api.js'
import { TypedEvent, type Disposer } from '../typed-event.js'
import type {
  CheckObservation, CheckStatus, HealthChange, HealthCheckDefinition, HealthCheckSource, HealthStatus, HealthSummary,
} from './health-check.js'
import { CHECK_NAME, HEALTH_CHECK_DEFINITION_SHAPE } from './health-check-definition-shape.js'
import { preciseNow } from './precise-now.js'
import { scrubSecrets } from './scrub-secrets.js'

/** Options of `HealthMonitor`. */
export interface HealthMonitorOptions {
  /** Default: silent. Transitions are logged at warn (down) and info (up). */
  readonly logger?: Logger
  /**
   * The least time between two runs of a check that waiting work asked for
   * (a gate holding a message after its handler met an outage). Default 200 ms.
   */
  readonly recheckMinIntervalMs?: number
}

const HEALTH_MONITOR_OPTIONS_SHAPE: OptionShape<HealthMonitorOptions> = {
  logger: isLogger,
  recheckMinIntervalMs: finiteNumber(0, MAX_TIMER_MS),
}

/** Runs on a failing check; may be async. Errors are logged, never thrown. */
export type FailoverCallback = (change: HealthChange) => unknown

interface Check {
  readonly name: string
  readonly run: HealthCheckDefinition['check']
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly critical: boolean
  readonly componentType: string
  readonly isOutage: ((error: unknown) => boolean) | undefined
  readonly watch: HealthCheckDefinition['watch']
  readonly tracker: HealthTracker
  /** The run in progress (bounded by the timeout). */
  running: Promise<void> | undefined
  /** The check's own promise, while it has not settled, even past its timeout. */
  invocation: Promise<unknown> | undefined
  timer: NodeJS.Timeout | undefined
  unwatch: Disposer | undefined
  lastError: string | undefined
  latencyMs: number | undefined
  checkedAt: number | undefined
  changedAt: number | undefined
  observation: CheckObservation | undefined
  /** When the last passing run started (epoch ms, sub-millisecond, see preciseNow); 0 before any. */
  passStartedAt: number
  /** When a waiter last made it run early. */
  requestedAt: number
  requestTimer: NodeJS.Timeout | undefined
}

interface Waiter {
  readonly names: readonly string[]
  readonly since: number
  readonly resolve: () => void
  readonly reject: (error: Error) => void
}

/**
 * Watches the application's dependencies: each check runs in the background
 * on its own interval with a timeout, and rise/fall thresholds turn results
 * into a state (`unknown`, then `healthy` or `unhealthy`). Endpoints and gates
 * read the latest state and never wait for a check, so a hung dependency
 * cannot stall them.
 *
 * @example
 * const monitor = new HealthMonitor({ logger })
 * monitor.register({ name: 'cache', check: () => redis.ping(), critical: false })
 * monitor.onDown((e) => logger.warn(`${e.name} is down: ${e.error}`))
 * await monitor.start()
 * monitor.summary().status // 'healthy' | 'degraded' | 'unhealthy'
 */
export class HealthMonitor {
  readonly #log: Logger
  readonly #recheckMinIntervalMs: number
  readonly #checks = new Map<string, Check>()
  readonly #down: TypedEvent<HealthChange>
  readonly #up: TypedEvent<HealthChange>
  readonly #changed: TypedEvent<HealthChange>
  readonly #failover = new Map<string, Set<FailoverCallback>>()
  readonly #waiters = new Set<Waiter>()
  #state: 'created' | 'running' | 'stopped' = 'created'

  constructor(options: HealthMonitorOptions = {}) {
    checkOptions(options, HEALTH_MONITOR_OPTIONS_SHAPE, 'monitor')
    this.#log = safeLogger(options.logger ?? silentLogger)
    this.#recheckMinIntervalMs = options.recheckMinIntervalMs ?? 200
    const onListenerError = (error: unknown): void => this.#log.error('a health event listener threw', { error })
    this.#down = new TypedEvent(onListenerError)
    this.#up = new TypedEvent(onListenerError)
    this.#changed = new TypedEvent(onListenerError)
  }

  /**
   * Adds a check; once the monitor runs, it is run at once and then on its
   * interval. Returns a disposer that removes it. A wrong definition throws
   * `InvalidOptionError` naming the field.
   */
  register(definition: HealthCheckDefinition): Disposer {
    const check = this.#validate(definition)
    this.#checks.set(check.name, check)
    if (this.#state === 'running') this.#activate(check)
    return () => {
      if (this.#checks.get(check.name) !== check) return
      this.#checks.delete(check.name)
      this.#deactivate(check)
      this.#wakeWaiters()
    }
  }

  /** Registers every check a pool describes itself by; the disposer removes them all. */
  registerSource(source: HealthCheckSource): Disposer {
    const disposers: Disposer[] = []
    const disposeAll = (): void => {
      for (const dispose of disposers.splice(0)) dispose()
    }
    try {
      for (const definition of source.healthChecks()) disposers.push(this.register(definition))
    } catch (error) {
      // All or nothing: a retried start must not find half of them registered.
      disposeAll()
      throw error
    }
    return disposeAll
  }

  /** Runs every check once (each bounded by its timeout), then keeps running them in the background. */
  async start(): Promise<void> {
    if (this.#state === 'running') return
    this.#state = 'running'
    for (const check of this.#checks.values()) check.unwatch = check.watch?.(() => void this.#run(check))
    await Promise.all([...this.#checks.values()].map((check) => this.#run(check)))
  }

  /**
   * Stops running checks; `whenHealthy` waits still pending reject, since
   * nothing would end them. States stay as they were last seen; `start()`
   * runs the checks again.
   */
  stop(): void {
    if (this.#state !== 'running') return
    this.#state = 'stopped'
    for (const check of this.#checks.values()) this.#deactivate(check)
    const waiters = [...this.#waiters]
    this.#waiters.clear()
    for (const waiter of waiters) waiter.reject(new Error('the health monitor stopped'))
  }

  /** The registered check names. */
  get names(): readonly string[] {
    return [...this.#checks.keys()]
  }

  has(name: string): boolean {
    return this.#checks.has(name)
  }

  /** The state of one check, or `undefined` when no check has that name. */
  state(name: string): HealthState | undefined {
    return this.#checks.get(name)?.tracker.state
  }

  /**
   * True when every named check is registered and healthy, and (with
   * `since`) its last passing run started after `since` (epoch ms, as
   * `preciseNow()` gives it).
   */
  isHealthy(names: readonly string[], since = 0): boolean {
    for (const name of names) {
      const check = this.#checks.get(name)
      if (!check || check.tracker.state !== 'healthy' || (since > 0 && check.passStartedAt <= since)) return false
    }
    return true
  }

  /** True when `error` (or one of its causes) means the named dependency is down, by its check's `isOutage`. */
  isOutage(name: string, error: unknown): boolean {
    const classify = this.#checks.get(name)?.isOutage
    if (!classify) return false
    let current = error
    for (let depth = 0; depth < 5 && current !== undefined && current !== null; depth++) {
      if (classify(current)) return true
      current = (current as { cause?: unknown }).cause
    }
    return false
  }

  /**
   * Resolves once `isHealthy(names, since)` holds. With a `since` later than
   * a check's last pass, asks that check to run early (at most once per
   * `recheckMinIntervalMs`). Before `start()` it waits for the first runs.
   * Rejects with the signal's reason when aborted, and when the monitor is
   * or gets stopped.
   */
  whenHealthy(names: readonly string[], since = 0, signal?: AbortSignal): Promise<void> {
    if (this.isHealthy(names, since)) return Promise.resolve()
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.#state === 'stopped') return Promise.reject(new Error('the health monitor is stopped'))
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        names,
        since,
        resolve: () => {
          signal?.removeEventListener('abort', abort)
          resolve()
        },
        reject: (error) => {
          signal?.removeEventListener('abort', abort)
          reject(error)
        },
      }
      const abort = (): void => {
        this.#waiters.delete(waiter)
        reject(signal!.reason)
      }
      signal?.addEventListener('abort', abort, { once: true })
      this.#waiters.add(waiter)
      for (const name of names) {
        const check = this.#checks.get(name)
        if (check && check.passStartedAt <= since) this.#requestRun(check)
      }
    })
  }

  /** Runs one check now (sharing a run in progress) and returns its status. */
  async check(name: string): Promise<CheckStatus> {
    const check = this.#checks.get(name)
    if (!check) throw new InvalidOptionError('name', `no health check is named "${name}"; registered: ${this.names.join(', ') || 'none'}`)
    await this.#run(check)
    return this.#status(check)
  }

  /** One check's status, or `undefined`. */
  status(name: string): CheckStatus | undefined {
    const check = this.#checks.get(name)
    return check && this.#status(check)
  }

  /** The overall status and every check's. */
  summary(): HealthSummary {
    let status: HealthStatus = 'healthy'
    const checks: CheckStatus[] = []
    for (const check of this.#checks.values()) {
      checks.push(this.#status(check))
      const state = check.tracker.state
      if (check.critical && state !== 'healthy') status = 'unhealthy'
      else if (!check.critical && state === 'unhealthy' && status === 'healthy') status = 'degraded'
    }
    return Object.freeze({ status, checks: Object.freeze(checks) })
  }

  /** A check turned unhealthy. */
  onDown(listener: (change: HealthChange) => void): Disposer {
    return this.#down.on(listener)
  }

  /** A check turned healthy. */
  onUp(listener: (change: HealthChange) => void): Disposer {
    return this.#up.on(listener)
  }

  /** Any state change, `unknown` to a first result included. */
  onChange(listener: (change: HealthChange) => void): Disposer {
    return this.#changed.on(listener)
  }

  /**
   * Runs `callback` each time the named check turns unhealthy: switch to a
   * standby, page someone. It may be async; its errors are logged.
   *
   * @example
   * monitor.onFailover('primary', () => promoteStandby())
   */
  onFailover(name: string, callback: FailoverCallback): Disposer {
    let callbacks = this.#failover.get(name)
    if (!callbacks) this.#failover.set(name, (callbacks = new Set()))
    const own = (change: HealthChange): unknown => callback(change)
    callbacks.add(own)
    return () => {
      callbacks.delete(own)
    }
  }

  #validate(definition: HealthCheckDefinition): Check {
    if (!definition || typeof definition !== 'object') throw new InvalidOptionError('check', 'pass { name, check, ... }')
    const { name } = definition
    if (typeof name !== 'string' || !CHECK_NAME.test(name)) {
      throw new InvalidOptionError('check.name', `${JSON.stringify(name) ?? String(name)} is not a check name: use letters, digits and . _ - / : [ ] only`)
    }
    const field = (key: string): string => `checks["${name}"].${key}`
    if (this.#checks.has(name)) throw new InvalidOptionError(field('name'), 'another check has this name')
    checkOptions(definition, HEALTH_CHECK_DEFINITION_SHAPE, `checks["${name}"]`)
    return {
      name,
      run: definition.check,
      intervalMs: definition.intervalMs ?? 5000,
      timeoutMs: definition.timeoutMs ?? 2000,
      critical: definition.critical ?? true,
      componentType: definition.componentType ?? 'component',
      isOutage: definition.isOutage,
      watch: definition.watch,
      tracker: new HealthTracker({ rise: definition.rise ?? 2, fall: definition.fall ?? 2 }),
      running: undefined,
      invocation: undefined,
      timer: undefined,
      unwatch: undefined,
      lastError: undefined,
      latencyMs: undefined,
      checkedAt: undefined,
      changedAt: undefined,
      observation: undefined,
      passStartedAt: 0,
      requestedAt: 0,
      requestTimer: undefined,
    }
  }

  #activate(check: Check): void {
    check.unwatch = check.watch?.(() => void this.#run(check))
    void this.#run(check)
  }

  #deactivate(check: Check): void {
    clearTimeout(check.timer)
    clearTimeout(check.requestTimer)
    check.timer = check.requestTimer = undefined
    check.unwatch?.()
    check.unwatch = undefined
  }

  #run(check: Check): Promise<void> {
    check.running ??= this.#runOnce(check).finally(() => {
      check.running = undefined
      this.#scheduleNext(check)
      this.#rerunForWaiters(check)
    })
    return check.running
  }

  #scheduleNext(check: Check): void {
    clearTimeout(check.timer)
    check.timer = undefined
    if (this.#state !== 'running' || this.#checks.get(check.name) !== check) return
    check.timer = setTimeout(() => void this.#run(check), check.intervalMs)
    // Checks alone never keep the process alive.
    check.timer.unref()
  }

  /** A run asked for by waiting work: now, or as soon as the minimum spacing allows. */
  #requestRun(check: Check): void {
    if (this.#state !== 'running' || check.running || check.requestTimer) return
    const wait = check.requestedAt + this.#recheckMinIntervalMs - Date.now()
    const go = (): void => {
      check.requestTimer = undefined
      check.requestedAt = Date.now()
      void this.#run(check)
    }
    if (wait <= 0) return go()
    check.requestTimer = setTimeout(go, wait)
    check.requestTimer.unref()
  }

  async #runOnce(check: Check): Promise<void> {
    clearTimeout(check.timer)
    const startedAt = preciseNow()
    const started = performance.now()
    if (check.invocation) {
      // Never a second call while the first still hangs: a check that ignores its signal must not pile up.
      return this.#record(check, startedAt, started, { passed: false, error: `still running after its ${check.timeoutMs} ms timeout` })
    }
    const controller = new AbortController()
    let invocation: Promise<unknown>
    try {
      invocation = Promise.resolve(check.run(controller.signal))
    } catch (error) {
      invocation = Promise.reject(error)
    }
    check.invocation = invocation
    const settled = (): void => {
      if (check.invocation === invocation) check.invocation = undefined
    }
    invocation.then(settled, settled)
    const outcome = await raceTimeout(
      invocation.then(
        (value) => ({ passed: true as const, value }),
        (error: unknown) => ({ passed: false as const, error: describe(error) }),
      ),
      check.timeoutMs,
      () => {
        controller.abort(new Error(`health check ${check.name} timed out`))
        return { passed: false as const, error: `no answer within ${check.timeoutMs} ms` }
      },
    )
    this.#record(check, startedAt, started, outcome)
  }

  #record(
    check: Check,
    startedAt: number,
    started: number,
    outcome: { readonly passed: true; readonly value: unknown } | { readonly passed: false; readonly error: string },
  ): void {
    if (this.#checks.get(check.name) !== check) return
    check.latencyMs = performance.now() - started
    check.checkedAt = Date.now()
    const from = check.tracker.state
    let to: HealthState | undefined
    if (outcome.passed && (outcome.value as CheckObservation | undefined)?.pending === true) {
      check.lastError = undefined
    } else if (outcome.passed) {
      check.lastError = undefined
      check.observation = observationOf(outcome.value)
      check.passStartedAt = startedAt
      to = check.tracker.success()
    } else {
      check.lastError = outcome.error
      check.observation = undefined
      to = check.tracker.failure()
    }
    if (to !== undefined) this.#transition(check, from, to)
    this.#wakeWaiters()
  }

  #transition(check: Check, from: HealthState, to: HealthState): void {
    check.changedAt = Date.now()
    const change: HealthChange = Object.freeze({
      name: check.name, critical: check.critical, from, to, error: check.lastError, at: check.changedAt,
    })
    if (to === 'unhealthy') {
      this.#log.warn('health check failing', { check: check.name, critical: check.critical, error: check.lastError })
      this.#down.emit(change)
      for (const callback of this.#failover.get(check.name) ?? []) {
        void Promise.resolve()
          .then(() => callback(change))
          .catch((error: unknown) => this.#log.error('failover callback failed', { check: check.name, error }))
      }
    } else if (to === 'healthy' && from === 'unhealthy') {
      this.#log.info('health check passing again', { check: check.name })
      this.#up.emit(change)
    } else if (to === 'healthy') {
      this.#up.emit(change)
    }
    this.#changed.emit(change)
  }

  #wakeWaiters(): void {
    for (const waiter of this.#waiters) {
      if (this.isHealthy(waiter.names, waiter.since)) {
        this.#waiters.delete(waiter)
        waiter.resolve()
      }
    }
  }

  /**
   * After a run: one that was already under way when a waiter asked for a
   * fresh pass cannot satisfy it, so ask again while the check still reads
   * healthy. Once it is unhealthy, its interval and its watch bring the recovery.
   */
  #rerunForWaiters(check: Check): void {
    if (check.tracker.state !== 'healthy') return
    for (const waiter of this.#waiters) {
      if (check.passStartedAt <= waiter.since && waiter.names.includes(check.name)) return this.#requestRun(check)
    }
  }

  #status(check: Check): CheckStatus {
    return Object.freeze({
      name: check.name,
      critical: check.critical,
      componentType: check.componentType,
      state: check.tracker.state,
      lastError: check.lastError,
      latencyMs: check.latencyMs,
      checkedAt: check.checkedAt,
      changedAt: check.changedAt,
      observation: check.observation,
    })
  }
}

function describe(error: unknown): string {
  const text = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error)
  return scrubSecrets(text)
}

function observationOf(value: unknown): CheckObservation | undefined {
  if (!value || typeof value !== 'object') return undefined
  const { observedValue, observedUnit } = value as CheckObservation
  const unit = typeof observedUnit === 'string' ? scrubSecrets(observedUnit) : undefined
  if (typeof observedValue === 'string') return Object.freeze({ observedValue: scrubSecrets(observedValue), observedUnit: unit })
  if (typeof observedValue === 'number' || typeof observedValue === 'boolean') return Object.freeze({ observedValue, observedUnit: unit })
  return undefined
}
