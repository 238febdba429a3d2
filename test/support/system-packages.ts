import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

/**
 * Makes sure Debian packages are installed, installing them with apt-get
 * when a file they provide is missing (as root, from the Debian mirror; the
 * CI machine has no HAProxy or NGINX until asked). Throws with apt's output
 * if that fails.
 *
 * @example
 * ensureDebianPackages({ '/usr/sbin/haproxy': 'haproxy' })
 */
export function ensureDebianPackages(files: Readonly<Record<string, string>>): void {
  const missing = [...new Set(Object.entries(files).filter(([file]) => !existsSync(file)).map(([, pkg]) => pkg))]
  if (missing.length === 0) return
  const apt = (args: string[]): void => {
    // Other test runs on the machine may be installing too: wait for dpkg's lock rather than fail at once.
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=240', ...args], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, stdio: 'pipe', timeout: 300_000 })
  }
  try {
    try {
      apt(['install', '-y', '-q', '--no-install-recommends', ...missing])
    } catch {
      // Package lists may be missing or stale on a fresh machine.
      apt(['update', '-q'])
      apt(['install', '-y', '-q', '--no-install-recommends', ...missing])
    }
  } catch (error) {
    const output = (error as { stderr?: Buffer; stdout?: Buffer }).stderr?.toString() ?? String(error)
    throw new Error(`could not install ${missing.join(', ')} with apt-get: ${output.slice(-2000)}`, { cause: error })
  }
}

export const HAPROXY = '/usr/sbin/haproxy'
export const NGINX = '/usr/sbin/nginx'
export const NGINX_STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so'
/** Prometheus's promtool (Debian's `prometheus` package): checks metrics expositions and rule files. */
export const PROMTOOL = '/usr/bin/promtool'
