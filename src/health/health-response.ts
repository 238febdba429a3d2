import type { CheckStatus, HealthSummary } from './health-check.js'

/** `pass` and `warn` are served with 200, `fail` with 503. */
export type ResponseStatus = 'pass' | 'warn' | 'fail'

/** One entry of a health+json `checks` map. */
export interface CheckResult {
  readonly componentType: string
  readonly status: ResponseStatus
  readonly critical?: boolean
  readonly observedValue?: number | string | boolean
  readonly observedUnit?: string
  readonly time?: string
  readonly output?: string
}

/** A health+json body (draft-inadarei-api-health-check). */
export interface HealthResponse {
  readonly status: ResponseStatus
  readonly description: string
  readonly checks: Readonly<Record<string, readonly CheckResult[]>>
}

/** Readiness inputs besides the checks. */
export interface ReadinessFacts {
  /** `undefined` when there is no transport yet. */
  readonly transportConnected: boolean | undefined
  readonly shuttingDown: boolean
}

/** How one check reads in a body: a failing critical check fails, a failing other one warns. */
export function checkResult(check: CheckStatus): CheckResult {
  const status: ResponseStatus = check.state === 'healthy' ? 'pass' : check.critical ? 'fail' : 'warn'
  const output = check.state === 'unknown' ? 'not checked yet' : check.lastError
  return {
    componentType: check.componentType,
    status,
    critical: check.critical,
    ...(check.observation?.observedValue !== undefined ? { observedValue: check.observation.observedValue } : {}),
    ...(check.observation?.observedUnit !== undefined ? { observedUnit: check.observation.observedUnit } : {}),
    ...(check.checkedAt !== undefined ? { time: new Date(check.checkedAt).toISOString() } : {}),
    ...(status !== 'pass' && output ? { output } : {}),
  }
}

/**
 * `/ready`: `fail` while a critical check is not healthy, the transport is
 * not connected, or the process is shutting down; `warn` while only
 * non-critical checks fail; else `pass`.
 */
export function readinessResponse(summary: HealthSummary, facts: ReadinessFacts): HealthResponse {
  const checks: Record<string, CheckResult[]> = {}
  for (const check of summary.checks) checks[check.name] = [checkResult(check)]
  if (facts.transportConnected !== undefined) {
    checks['mqtt:connected'] = [{
      componentType: 'mqtt-client',
      status: facts.transportConnected ? 'pass' : 'fail',
      observedValue: facts.transportConnected,
      ...(facts.transportConnected ? {} : { output: 'no broker connection takes messages' }),
    }]
  }
  if (facts.shuttingDown) checks['shutdown'] = [{ componentType: 'system', status: 'fail', output: 'shutting down: finishing the messages in flight' }]
  const ready = summary.status !== 'unhealthy' && facts.transportConnected !== false && !facts.shuttingDown
  const status: ResponseStatus = !ready ? 'fail' : summary.status === 'degraded' ? 'warn' : 'pass'
  return { status, description: 'readiness: may this instance take work', checks }
}

/**
 * `/health`: liveness. It passes whenever the process and its event loop
 * answer (a dependency being down is no reason to restart the process); it
 * says `warn` while any check fails, for people reading it.
 */
export function livenessResponse(summary: HealthSummary, uptimeSeconds: number): HealthResponse {
  const checks: Record<string, CheckResult[]> = {
    uptime: [{ componentType: 'system', status: 'pass', observedValue: Math.round(uptimeSeconds), observedUnit: 's' }],
  }
  for (const check of summary.checks) checks[check.name] = [checkResult(check)]
  return { status: summary.status === 'healthy' ? 'pass' : 'warn', description: 'liveness: the process answers', checks }
}
