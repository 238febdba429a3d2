// The package as a user gets it: packed by `npm pack`, installed into a new
// project by the README's install block. Its source maps resolve, each subpath
// loads only its own plugin's dependencies, the peers are the user's single
// copies, and CommonJS can require() it.
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { packedProject, run, type PackedProject } from '../support/packed-project.js'

const HOOKS = fileURLToPath(new URL('../support/module-load-hooks.js', import.meta.url))

/** Each entry point, names it must export, and packages of other plugins it must not load. */
const ENTRY_POINTS: readonly { readonly subpath: string; readonly exports: readonly string[]; readonly notLoaded: readonly string[] }[] = [
  { subpath: '/kernel', exports: ['Application', 'Router', 'MessageContext'], notLoaded: ['pg', 'kysely', 'maxmind', 'prom-client', 'lmdb'] },
  { subpath: '/mqtt', exports: ['BrokerPool'], notLoaded: ['pg', 'kysely', 'maxmind', 'prom-client', 'lmdb'] },
  { subpath: '/kysely', exports: ['ReplicaPool', 'ReadOnly', 'Write', 'migrateToLatest'], notLoaded: ['mqtt', 'maxmind', 'prom-client', 'lmdb'] },
  { subpath: '/geoip', exports: ['GeoResolver', 'geoRegion', 'geoGate'], notLoaded: ['mqtt', 'pg', 'kysely', 'prom-client', 'lmdb'] },
  // lmdb (native) only once a gate opens a spool.
  { subpath: '/health', exports: ['HealthModule', 'healthGate', 'HealthServer'], notLoaded: ['mqtt', 'pg', 'kysely', 'maxmind', 'lmdb'] },
  // The render command reads settings with the composition root's parser, which brings the GeoIP and metrics options' checks (maxmind, prom-client).
  { subpath: '/infra', exports: ['planInfra', 'renderHaproxy', 'runCli'], notLoaded: ['mqtt', 'pg', 'kysely', 'lmdb'] },
  { subpath: '/testing', exports: ['startTopology', 'freePort'], notLoaded: ['mqtt', 'kysely', 'maxmind', 'prom-client', 'lmdb'] },
]

// Imports one specifier in a fresh node with hooks recording what the ESM loader
// resolved; CommonJS packages loaded by require() show in the require cache.
const PROBE = `
import { register, createRequire } from 'node:module'
import { readFileSync, writeFileSync } from 'node:fs'
const file = process.env.PROBE_FILE
writeFileSync(file, '')
register(process.env.PROBE_HOOKS, { data: { file } })
const loaded = await import(process.env.PROBE_SPECIFIER)
const urls = [...readFileSync(file, 'utf8').split('\\n'), ...Object.keys(createRequire(import.meta.url).cache)]
const packages = new Set()
for (const url of urls) {
  const names = [...url.matchAll(/node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//g)]
  if (names.length > 0) packages.add(names.at(-1)[1])
}
console.log(JSON.stringify({ packages: [...packages].sort(), exports: Object.keys(loaded).sort() }))
`

describe('the packed package', function () {
  this.timeout(60_000)
  let project: PackedProject

  before(async function () {
    this.timeout(300_000)
    project = await packedProject()
  })

  it('ships source maps whose sources are inline or in the package', () => {
    const maps = filesUnder(project.packageDir).filter((file) => file.endsWith('.js.map'))
    assert.ok(maps.length > 100, `only ${maps.length} source maps in the package`)
    const unresolved: string[] = []
    for (const map of maps) {
      const { sources, sourcesContent, sourceRoot } = JSON.parse(readFileSync(map, 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[]; sourceRoot?: string }
      sources.forEach((source, i) => {
        if (typeof sourcesContent?.[i] === 'string') return
        if (!existsSync(resolve(dirname(map), sourceRoot ?? '', source))) unresolved.push(`${relative(project.packageDir, map)} → ${source}`)
      })
    }
    assert.deepEqual(unresolved.slice(0, 10), [], `${unresolved.length} of the maps' sources are neither inline nor shipped`)
    const scripts = filesUnder(project.packageDir).filter((file) => file.endsWith('.js'))
    const dangling = scripts.filter((script) => {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(readFileSync(script, 'utf8'))?.[1]
      return url !== undefined && !existsSync(resolve(dirname(script), url))
    })
    assert.deepEqual(dangling.map((file) => relative(project.packageDir, file)), [], 'scripts whose sourceMappingURL names no shipped map')
  })

  it('takes kysely, prom-client and tsyringe from the app: one copy each, the app\'s', () => {
    const manifest = JSON.parse(readFileSync(join(project.packageDir, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies: Record<string, string> }
    for (const peer of ['kysely', 'prom-client', 'tsyringe']) {
      assert.ok(manifest.peerDependencies[peer], `${peer} is no peer dependency`)
      assert.equal(manifest.dependencies[peer], undefined, `${peer} is still a dependency`)
      assert.ok(existsSync(join(project.dir, 'node_modules', peer)), `the install block did not install ${peer}`)
      assert.ok(!existsSync(join(project.packageDir, 'node_modules', peer)), `the package got its own copy of ${peer}`)
    }
  })

  for (const { subpath, exports, notLoaded } of ENTRY_POINTS) {
    it(`routemq-load-balancing${subpath} loads none of ${notLoaded.join(', ')}`, async () => {
      const { packages, exports: names } = await probe(`routemq-load-balancing${subpath}`)
      for (const name of exports) assert.ok(names.includes(name), `${subpath} does not export ${name}`)
      assert.deepEqual(notLoaded.filter((name) => packages.includes(name)), [], `${subpath} loaded ${packages.join(' ')}`)
    })
  }

  it('exports from the root every name of every subpath, as the same objects', async () => {
    const script = `
      const root = await import('routemq-load-balancing')
      const missing = []
      for (const subpath of ${JSON.stringify(ENTRY_POINTS.map((entry) => entry.subpath))}) {
        const part = await import('routemq-load-balancing' + subpath)
        for (const [name, value] of Object.entries(part)) if (root[name] !== value) missing.push(subpath + ' ' + name)
      }
      console.log(JSON.stringify(missing))`
    const { stdout } = await run('node', ['--input-type=module', '-e', script], { cwd: project.dir })
    // The launcher is the one subpath the root leaves out: tests' tooling, not the app's.
    assert.deepEqual((JSON.parse(stdout) as string[]).filter((entry) => !entry.startsWith('/testing ')), [])
  })

  it('can be require()d from CommonJS, as the README says', async () => {
    writeFileSync(join(project.dir, 'require-check.cjs'), `
      const root = require('routemq-load-balancing')
      const kysely = require('routemq-load-balancing/kysely')
      console.log(JSON.stringify({ router: typeof root.Router, module: typeof root.LoadBalancingModule.fromEnv, same: root.ReplicaPool === kysely.ReplicaPool }))`)
    const { stdout } = await run('node', ['require-check.cjs'], { cwd: project.dir })
    assert.deepEqual(JSON.parse(stdout), { router: 'function', module: 'function', same: true })
  })

  it('gives types for every entry point, to ESM and to CommonJS code (tsc --init\'s strictness)', async () => {
    const entries = [{ subpath: '', exports: ['LoadBalancingModule'] }, ...ENTRY_POINTS]
    const imports = entries.map(({ subpath, exports }) => `import { ${exports.join(', ')} } from 'routemq-load-balancing${subpath}'`).join('\n')
    const used = `export const used = [${entries.flatMap((entry) => entry.exports).join(', ')}]\n`
    mkdirSync(join(project.dir, 'types-check'), { recursive: true })
    writeFileSync(join(project.dir, 'types-check/esm.ts'), `${imports}\n${used}`)
    // CommonJS under verbatimModuleSyntax is written import x = require(...), as the README shows.
    const requires = entries.map(({ subpath }, i) => `import entry${i} = require('routemq-load-balancing${subpath}')`).join('\n')
    const required = `const used = [${entries.flatMap((entry, i) => entry.exports.map((name) => `entry${i}.${name}`)).join(', ')}]\nexport = used\n`
    writeFileSync(join(project.dir, 'types-check/cjs.cts'), `${requires}\n${required}`)
    try {
      // Files named on the command line: tsc ignores the project's tsconfig.json, so these are the flags.
      await run('npx', ['tsc', '--noEmit', '--module', 'nodenext', '--target', 'esnext', '--strict', '--noUncheckedIndexedAccess', '--exactOptionalPropertyTypes',
        '--verbatimModuleSyntax', '--skipLibCheck', '--types', 'node', 'types-check/esm.ts', 'types-check/cjs.cts'], { cwd: project.dir })
    } finally {
      // The quick-start test compiles the whole project folder next.
      rmSync(join(project.dir, 'types-check'), { recursive: true, force: true })
    }
  })

  async function probe(specifier: string): Promise<{ packages: string[]; exports: string[] }> {
    const env = { ...process.env, PROBE_FILE: join(project.dir, 'resolved.txt'), PROBE_HOOKS: pathToFileURL(HOOKS).href, PROBE_SPECIFIER: specifier }
    const { stdout } = await run('node', ['--input-type=module', '-e', PROBE], { cwd: project.dir, env })
    return JSON.parse(stdout) as { packages: string[]; exports: string[] }
  }
})

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !join(entry.parentPath, entry.name).includes('/node_modules/', dir.length))
    .map((entry) => join(entry.parentPath, entry.name))
}
