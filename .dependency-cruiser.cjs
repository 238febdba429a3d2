// The layer rules of the README's "Architecture" section, checked over the import graph by
// dependency-cruiser (`npm run lint:layers`, run by `npm test`). dependency-cruiser rather
// than eslint-plugin-boundaries: it resolves the project's `.js` specifiers to the `.ts`
// files through tsconfig.json with no extra resolver, it sees type-only imports and
// `declare module` targets as edges too, and it finds cycles over the whole graph, which a
// per-file ESLint rule can't do cheaply.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'A cycle makes load order matter and hides which layer a file belongs to: move the shared part into its own file.',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'kernel-imports-only-kernel',
      comment: 'src/routemq is the RouteMQ kernel: it imports nothing else of the project.',
      severity: 'error',
      from: { path: '^src/routemq/' },
      to: { path: '^(src|plugins|migrations|examples|test)/', pathNot: '^src/routemq/' },
    },
    {
      name: 'balancing-imports-kernel-errors-only',
      comment: 'src/balancing, the engine under every pool, imports only the kernel errors and small shared helpers.',
      severity: 'error',
      from: { path: '^src/balancing/' },
      to: {
        path: '^(src|plugins|migrations|examples|test)/',
        pathNot: ['^src/balancing/', '^src/routemq/errors/', '^src/typed-event\\.ts$'],
      },
    },
    {
      name: 'health-and-metrics-through-interfaces',
      comment: 'src/health and src/metrics read each other through interfaces (HealthCheckSource, MeasuredPool, ...) kept on the reading side, never each other\'s files.',
      severity: 'error',
      from: { path: '^src/(health|metrics)/' },
      to: { path: '^src/(health|metrics)/', pathNot: '^src/$1/' },
    },
    {
      name: 'core-below-plugins',
      comment: 'The core (src/balancing, src/health, src/metrics) is under the plugins and the composition root: it imports neither.',
      severity: 'error',
      from: { path: '^src/(balancing|health|metrics)/' },
      to: { path: '^(plugins/|src/composition/|src/index\\.ts$|src/testing/)' },
    },
    {
      name: 'core-uses-kernel-index',
      comment: 'The core uses the kernel\'s public index (src/routemq/index.ts) and its errors, not its inner files.',
      severity: 'error',
      from: { path: '^src/(health|metrics)/' },
      to: { path: '^src/routemq/', pathNot: '^src/routemq/(index|plugin-api|transport-api)\\.ts$' },
    },
    {
      name: 'plugin-uses-kernel-index',
      comment: 'A plugin uses the kernel\'s public index (src/routemq/index.ts), not its inner files: export what plugins need from there.',
      severity: 'error',
      from: { path: '^plugins/' },
      to: { path: '^src/routemq/', pathNot: '^src/routemq/(index|plugin-api|transport-api)\\.ts$' },
    },
    {
      name: 'plugin-not-another-plugin',
      comment: 'A plugin imports nothing of another plugin: what flows between them flows through the message context.',
      severity: 'error',
      from: { path: '^plugins/([^/]+)/' },
      to: { path: '^plugins/', pathNot: '^plugins/$1/' },
    },
    {
      name: 'plugin-not-composition',
      comment: 'A plugin imports nothing of the composition root (src/composition, src/index.ts): reading options and the environment is the root\'s job.',
      severity: 'error',
      from: { path: '^plugins/' },
      to: { path: '^(src/composition/|src/index\\.ts$|src/testing/)' },
    },
    {
      name: 'shipped-code-not-tests',
      comment: 'What the package ships (src, plugins, migrations) imports nothing of test/ or examples/.',
      severity: 'error',
      from: { path: '^(src|plugins|migrations)/' },
      to: { path: '^(test|examples)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
}
