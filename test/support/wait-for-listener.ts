import type { ChildProcess } from 'node:child_process'
import { connect } from 'node:net'

/**
 * Resolves once something accepts TCP connections on 127.0.0.1:`port`; fails
 * if `child` (the server expected there) exits first, or after `timeoutMs`.
 *
 * @example
 * const haproxy = spawn(HAPROXY, ['-db', '-f', cfg])
 * await waitForListener(8404, haproxy)
 */
export async function waitForListener(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the process meant to listen on ${port} exited with ${child.exitCode}`)
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (accepted) return
    if (Date.now() > deadline) throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
