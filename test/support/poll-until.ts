import assert from 'node:assert/strict'

/**
 * Calls `probe` every `everyMs` until it returns something truthy, and
 * resolves with that; fails the test after `timeoutMs`. For conditions no
 * event announces (figures a store updates from a worker thread).
 *
 * @example
 * await pollUntil(() => gate.stats.spool!.messages === 0, { timeoutMs: 10_000, everyMs: 2 })
 */
export async function pollUntil<T>(probe: () => T | Promise<T>, { timeoutMs, everyMs }: { readonly timeoutMs: number; readonly everyMs: number }): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value) return value as Exclude<T, undefined | false>
    assert.ok(Date.now() < deadline, `the condition did not hold within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}
