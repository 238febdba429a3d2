import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readmeBlock, readmeBlocks, type ReadmeBlock } from './readme-blocks.js'

/** This repository (the tests run from dist/test/support). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** A new project that installed the packed package the way the README's install block says. */
export interface PackedProject {
  /** The project's folder, with the README's install block run in it. */
  readonly dir: string
  readonly tarball: string
  /** The installed package: the tarball's contents. */
  readonly packageDir: string
  readonly blocks: readonly ReadmeBlock[]
}

let project: Promise<PackedProject> | undefined

/**
 * Packs this repository's build (`npm pack`, what a registry would get) and runs
 * the README's install block in a new folder with the tarball in place of the
 * package name, once per test process; the test files that need it share it.
 * npm prefers its cache (`prefer-offline`), reaching the registry only for
 * what the cache lacks. The folder is removed when the process exits.
 *
 * @example
 * const { dir } = await packedProject()
 */
export function packedProject(): Promise<PackedProject> {
  project ??= create()
  return project
}

async function create(): Promise<PackedProject> {
  if (!existsSync(join(REPO_ROOT, 'dist/src/index.js'))) throw new Error('dist/ is missing: build first (npm run build)')
  const tmp = mkdtempSync(join(tmpdir(), 'routemq-packed-'))
  process.once('exit', () => rmSync(tmp, { recursive: true, force: true }))
  const packed = await run('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: REPO_ROOT })
  const tarball = join(tmp, packed.stdout.trim().split('\n').at(-1)!)
  const blocks = readmeBlocks(join(REPO_ROOT, 'README.md'))
  const install = readmeBlock(blocks, 'install').text
  const command = 'npm install routemq-load-balancing '
  if (!install.includes(command)) throw new Error(`the README's install block no longer says "${command.trim()}": the test puts the tarball there`)
  const dir = join(tmp, 'app')
  mkdirSync(dir)
  await run('bash', ['-euo', 'pipefail', '-c', install.replace(command, `npm install ${tarball} `)], { cwd: dir, env: npmEnv() })
  return { dir, tarball, packageDir: join(dir, 'node_modules/routemq-load-balancing'), blocks }
}

/**
 * The environment for npm in the new project: this process's, without the
 * `npm_*` variables `npm test` set (they name this repository as the prefix),
 * preferring the cache.
 */
export function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'INIT_CWD'))
  return { ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', ...extra }
}

/** Output of a finished command. */
export interface RunResult {
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs a command to its end; rejects with its exit code and the tail of its
 * output when it fails or outlives `timeoutMs`.
 *
 * @example
 * await run('npx', ['tsc', '-p', '.'], { cwd: dir })
 */
export function run(command: string, args: readonly string[], options: { readonly cwd: string; readonly env?: NodeJS.ProcessEnv; readonly timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeoutMs ?? 240_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const output = `${stdout}\n${stderr}`.trim().split('\n').filter((line) => !line.includes('install-scripts')).slice(-40).join('\n')
        reject(new Error(`${command} ${args.join(' ').slice(0, 200)} failed (${error.code ?? error.signal}):\n${output}`))
      } else {
        resolve({ stdout, stderr })
      }
    })
  })
}
