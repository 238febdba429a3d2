import { accessSync, constants, readdirSync, realpathSync, statSync } from 'node:fs'
import { delimiter, dirname, join } from 'node:path'
import { MissingBinaryError } from './missing-binary-error.js'

/**
 * Where to look for the executables, for machines with unusual layouts and
 * for tests that simulate a missing installation.
 *
 * @example
 * const binaries: TopologyBinaryOptions = { searchPath: ['/opt/pg16/bin', '/usr/sbin'] }
 */
export interface TopologyBinaryOptions {
  /**
   * Directories searched in order. Defaults to `$PATH`, then `/usr/local/sbin`,
   * `/usr/sbin`, `/sbin`, then Debian's `/usr/lib/postgresql/<version>/bin`,
   * highest version first.
   */
  readonly searchPath?: readonly string[]
  /** Full path of the mosquitto executable; skips the search. */
  readonly mosquitto?: string
  /** Full path of the nats-server executable, for `brokerKind: 'nats'`; skips the search. */
  readonly natsServer?: string
  /** Directory holding postgres, initdb and pg_basebackup; skips the search. */
  readonly postgresBinDir?: string
}

/**
 * The executables a topology runs, as absolute paths.
 *
 * @example
 * const found: TopologyBinaries = { mosquitto: '/usr/sbin/mosquitto', natsServer: undefined, postgres: undefined }
 */
export interface TopologyBinaries {
  readonly mosquitto: string | undefined
  readonly natsServer: string | undefined
  readonly postgres:
    | {
        readonly postgres: string
        readonly initdb: string
        readonly pgBasebackup: string
      }
    | undefined
}

const POSTGRES_HINT = 'apt-get install postgresql-15 (or your distribution\'s "postgresql" package)'
const MOSQUITTO_HINT = 'apt-get install mosquitto'
const NATS_HINT = 'apt-get install nats-server'

/**
 * Finds the executables a topology needs, synchronously, so a missing one is
 * reported before anything is started; throws {@link MissingBinaryError}.
 * The PostgreSQL tools are taken from the directory `postgres` really lives
 * in, so their versions match (and Debian's pg_wrapper is bypassed).
 *
 * @example
 * const { mosquitto } = locateBinaries({ mosquitto: true, natsServer: false, postgres: false }, {})
 */
export function locateBinaries(
  needs: { readonly mosquitto: boolean; readonly natsServer: boolean; readonly postgres: boolean },
  options: TopologyBinaryOptions,
): TopologyBinaries {
  const searchPath = options.searchPath ?? defaultSearchPath()
  return Object.freeze({
    mosquitto: needs.mosquitto ? locateExecutable('mosquitto', options.mosquitto, searchPath, MOSQUITTO_HINT) : undefined,
    natsServer: needs.natsServer ? locateExecutable('nats-server', options.natsServer, searchPath, NATS_HINT) : undefined,
    postgres: needs.postgres ? Object.freeze(locatePostgres(options, searchPath)) : undefined,
  })
}

function locateExecutable(name: string, given: string | undefined, searchPath: readonly string[], hint: string): string {
  if (given !== undefined) {
    if (!isExecutable(given)) {
      throw new MissingBinaryError(name, [given], hint)
    }
    return given
  }
  return findIn(searchPath, name) ?? missing(name, searchPath, hint)
}

function locatePostgres(
  options: TopologyBinaryOptions,
  searchPath: readonly string[],
): { postgres: string; initdb: string; pgBasebackup: string } {
  const candidates = options.postgresBinDir === undefined ? searchPath : [options.postgresBinDir]
  const postgres = findIn(candidates, 'postgres') ?? missing('postgres', candidates, POSTGRES_HINT)
  const home = dirname(realpathSync(postgres))
  const toolPath = options.postgresBinDir === undefined ? [home, ...searchPath] : [home]
  return {
    postgres,
    initdb: findIn(toolPath, 'initdb') ?? missing('initdb', toolPath, POSTGRES_HINT),
    pgBasebackup: findIn(toolPath, 'pg_basebackup') ?? missing('pg_basebackup', toolPath, POSTGRES_HINT),
  }
}

function defaultSearchPath(): string[] {
  const fromEnvironment = (process.env.PATH ?? '').split(delimiter).filter((entry) => entry !== '')
  return [...fromEnvironment, '/usr/local/sbin', '/usr/sbin', '/sbin', ...debianPostgresDirectories()]
}

function debianPostgresDirectories(): string[] {
  const root = '/usr/lib/postgresql'
  let versions: string[]
  try {
    versions = readdirSync(root).filter((entry) => /^\d+(\.\d+)?$/.test(entry))
  } catch {
    return []
  }
  return versions.sort((a, b) => Number(b) - Number(a)).map((version) => join(root, version, 'bin'))
}

function findIn(directories: readonly string[], name: string): string | undefined {
  for (const directory of directories) {
    const candidate = join(directory, name)
    if (isExecutable(candidate)) {
      return candidate
    }
  }
  return undefined
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}

function missing(binary: string, searched: readonly string[], hint: string): never {
  throw new MissingBinaryError(binary, searched, hint)
}
