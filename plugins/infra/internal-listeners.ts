import { isIPv4 } from 'node:net'
import { bareHost, isHostName } from '../../src/host-name.js'
import { InvalidOptionError } from '../../src/routemq/plugin-api.js'

/** Where the balancer's internal listeners (the app's HTTP endpoints, HAProxy's stats page) bind, and who may use them. */
export interface InternalListeners {
  readonly host: string
  /** True for 127.0.0.0/8, `::1` and `localhost`: only the balancer's machine reaches them. */
  readonly loopback: boolean
  /** Names of the environment variables HAProxy reads the user and password from; `undefined` for none. */
  readonly credentials: { readonly userEnv: string; readonly passwordEnv: string } | undefined
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Validates `infra.internal`: a host (default 127.0.0.1), and credentials
 * by reference, required off loopback because `/metrics` and `/ready` name
 * internal hosts and carry error text.
 *
 * @example
 * planInternalListeners({ host: '0.0.0.0', userEnv: 'STATS_USER', passwordEnv: 'STATS_PASSWORD' })
 */
export function planInternalListeners(options: { readonly host?: string; readonly userEnv?: string; readonly passwordEnv?: string } | undefined): InternalListeners {
  if (options !== undefined && (typeof options !== 'object' || options === null)) throw new InvalidOptionError('infra.internal', 'must be an object { host, userEnv, passwordEnv }')
  const host = options?.host ?? '127.0.0.1'
  if (typeof host !== 'string' || !isHostName(host)) {
    throw new InvalidOptionError('infra.internal.host', 'must be an IP address or a DNS name (letters, digits, "-" and "."), e.g. "127.0.0.1" or "10.0.0.5"')
  }
  const bare = bareHost(host)
  const loopback = bare === 'localhost' || bare === '::1' || (isIPv4(bare) && bare.startsWith('127.'))
  for (const key of ['userEnv', 'passwordEnv'] as const) {
    const value = options?.[key]
    if (value !== undefined && (typeof value !== 'string' || !ENV_NAME.test(value))) {
      // The value is a variable's name; a secret pasted here by mistake is not echoed.
      throw new InvalidOptionError(`infra.internal.${key}`, 'must be the name of an environment variable (letters, digits and "_"), e.g. "HAPROXY_STATS_PASSWORD", not the credential itself')
    }
  }
  const { userEnv, passwordEnv } = options ?? {}
  if ((userEnv === undefined) !== (passwordEnv === undefined)) {
    throw new InvalidOptionError(`infra.internal.${userEnv === undefined ? 'userEnv' : 'passwordEnv'}`, 'give both infra.internal.userEnv and infra.internal.passwordEnv, or neither')
  }
  if (userEnv !== undefined && userEnv === passwordEnv) {
    throw new InvalidOptionError('infra.internal.passwordEnv', `names ${userEnv} as infra.internal.userEnv does: the user and the password would be one value; name two variables`)
  }
  if (!loopback && userEnv === undefined) {
    throw new InvalidOptionError(
      'infra.internal.userEnv',
      `the internal listeners on ${host} serve /metrics, /ready and the stats page to the network: name the environment variables holding their user and password ` +
        '(infra.internal.userEnv and passwordEnv), or leave infra.internal.host at 127.0.0.1 and reach them through a tunnel',
    )
  }
  return Object.freeze({ host, loopback, credentials: userEnv === undefined ? undefined : Object.freeze({ userEnv, passwordEnv: passwordEnv! }) })
}
