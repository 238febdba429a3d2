import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const OPENSSL_TIMEOUT_MS = 30_000

/**
 * Certificates made by {@link createTlsMaterial}: a CA, a server certificate
 * it signed for `127.0.0.1` and `localhost`, and an unrelated CA, as files
 * (readable by every user, so a broker running as `mosquitto` can load them)
 * and as PEM text for clients.
 *
 * @example
 * const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, { ca: material.caPem })
 */
export interface TlsMaterial {
  readonly directory: string
  readonly caFile: string
  readonly caKeyFile: string
  readonly caPem: string
  readonly certFile: string
  readonly certPem: string
  readonly keyFile: string
  readonly keyPem: string
  /** A second CA that signed nothing here, to provoke verification failures. */
  readonly otherCaFile: string
  readonly otherCaPem: string
}

/**
 * How {@link createTlsMaterial} runs openssl.
 *
 * @example
 * const options: TlsMaterialOptions = { openssl: '/usr/local/bin/openssl', validityDays: 1 }
 */
export interface TlsMaterialOptions {
  /** The openssl executable; default `openssl` from `PATH`. */
  readonly openssl?: string
  /** Validity of every certificate; default 2 days. */
  readonly validityDays?: number
}

/**
 * Creates {@link TlsMaterial} in `directory` (created if missing, made
 * world-readable) with the `openssl` CLI, using EC P-256 keys. The directory's
 * parents must be searchable by the broker's user, as `/tmp` is.
 *
 * @example
 * const directory = await mkdtemp(join(tmpdir(), 'tls-'))
 * const material = await createTlsMaterial(directory)
 */
export async function createTlsMaterial(directory: string, options: TlsMaterialOptions = {}): Promise<TlsMaterial> {
  const openssl = options.openssl ?? 'openssl'
  const validityDays = options.validityDays ?? 2
  if (!Number.isInteger(validityDays) || validityDays < 1) {
    throw new Error(`createTlsMaterial needs validityDays as a whole number of days >= 1, got ${String(validityDays)}; omit it for 2 days.`)
  }
  const days = String(validityDays)
  await mkdir(directory, { recursive: true })
  await chmod(directory, 0o755)
  const file = (name: string): string => join(directory, name)
  const config = file('openssl.cnf')
  await writeFile(config, OPENSSL_CONFIG, { mode: 0o644 })

  const selfSignedCa = (keyFile: string, certFile: string, commonName: string): Promise<void> =>
    run(openssl, [
      'req', '-x509', '-config', config, '-extensions', 'ca_cert',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', days, '-subj', `/CN=${commonName}`,
    ])
  await selfSignedCa(file('ca.key'), file('ca.crt'), 'RouteMQ test CA')
  await selfSignedCa(file('other-ca.key'), file('other-ca.crt'), 'RouteMQ unrelated test CA')
  await run(openssl, [
    'req', '-new', '-config', config,
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost',
  ])
  await run(openssl, [
    'x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', days,
    '-extfile', config, '-extensions', 'server_cert', '-out', file('server.crt'),
  ])
  await Promise.all([rm(file('server.csr')), rm(config)])

  const names = ['ca.key', 'ca.crt', 'other-ca.key', 'other-ca.crt', 'server.key', 'server.crt']
  // openssl writes keys with mode 0600; the broker drops to its own user.
  await Promise.all(names.map((name) => chmod(file(name), 0o644)))
  const [caPem, certPem, keyPem, otherCaPem] = await Promise.all(
    ['ca.crt', 'server.crt', 'server.key', 'other-ca.crt'].map((name) => readFile(file(name), 'utf8')),
  )
  return Object.freeze({
    directory,
    caFile: file('ca.crt'),
    caKeyFile: file('ca.key'),
    caPem: caPem!,
    certFile: file('server.crt'),
    certPem: certPem!,
    keyFile: file('server.key'),
    keyPem: keyPem!,
    otherCaFile: file('other-ca.crt'),
    otherCaPem: otherCaPem!,
  })
}

/**
 * mosquitto.conf lines for an extra TLS listener on `127.0.0.1:port` serving
 * `material`'s server certificate, for a topology's `brokerConfig`. The
 * certificate options always apply to the listener above them, whatever
 * `per_listener_settings` says, and the generated `allow_anonymous true` is
 * global, so clients need no certificate or password.
 *
 * @example
 * const tlsPort = await freePort()
 * const topology = await startTopology({ brokers: 1, brokerConfig: mosquittoTlsListener(tlsPort, material) })
 */
export function mosquittoTlsListener(port: number, material: TlsMaterial): string {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`mosquittoTlsListener needs a TCP port from 1 to 65535, got ${String(port)}; use await freePort().`)
  }
  const files = [material.caFile, material.certFile, material.keyFile]
  if (files.some((path) => /[\r\n]/.test(path))) {
    throw new Error(`mosquitto.conf cannot hold paths with line breaks (${JSON.stringify(files)}); create the material in a directory without them.`)
  }
  return [
    `listener ${port} 127.0.0.1`,
    `cafile ${material.caFile}`,
    `certfile ${material.certFile}`,
    `keyfile ${material.keyFile}`,
    'require_certificate false',
  ].join('\n')
}

// A self-contained configuration, so the system's openssl.cnf cannot add or
// clash with extensions.
const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no

[dn]
CN = placeholder

[ca_cert]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_cert]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`

function run(openssl: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      openssl,
      [...args],
      { timeout: OPENSSL_TIMEOUT_MS, env: { ...process.env, LC_ALL: 'C' } },
      (error, _stdout, stderr) => {
        if (error === null) {
          resolve()
        } else if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(
            new Error(
              `Cannot run "${openssl}" to create test certificates: it is not installed or not on PATH. ` +
                'Install it with `apt-get install openssl`, or pass its path as the openssl option.',
              { cause: error },
            ),
          )
        } else {
          reject(
            new Error(
              `${openssl} ${args[0]} failed while creating test certificates (${error.message.split('\n')[0]}). ` +
                `Fix what openssl reports:\n${stderr.trim()}`,
              { cause: error },
            ),
          )
        }
      },
    )
  })
}
