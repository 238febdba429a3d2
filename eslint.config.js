// ESLint over everything tsc compiles (`npm run lint`, run by `npm test`), with
// typescript-eslint's type-aware recommended rules: what goes wrong here is mostly about
// promises (a rejection nobody handles in a timer or an event listener), which only the
// type-aware rules (no-floating-promises, no-misused-promises, await-thenable) can see.
// The layer rules are dependency-cruiser's job (.dependency-cruiser.cjs), not this file's.
import js from '@eslint/js'
import { defineConfig } from 'eslint/config'
import tseslint from 'typescript-eslint'

export default defineConfig(
  { ignores: ['dist/', 'node_modules/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A type-only import must say so: with emitDecoratorMetadata a plain import of a type
      // can turn into a runtime import, and `import type` keeps the layer graph honest.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // `return promise` inside try/catch skips the catch and the finally's ordering.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // An `async` function with no `await` is how this code implements a Promise-returning
      // interface (the transport seam, Kysely's MigrationProvider, test fakes) so that a
      // throw becomes a rejection rather than a synchronous exception.
      '@typescript-eslint/require-await': 'off',
      // Passing on a caught error, or an error typed any or unknown by a library (pg's callbacks,
      // AbortSignal.reason, Kysely's migration result), as it is is right: wrapping it would hide
      // the original. Creating a non-Error rejection stays an error.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true, allowThrowingAny: true }],
      // `(...args: any[])` is how TypeScript says "any constructor" or "any method" (tsyringe's
      // constructor type, method decorators); unknown[] refuses them.
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
      // An array in a message prints as a,b,c, which is what the messages want.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true }],
      // `_name` is the house's way to say "deliberately unused" (a destructured field left
      // out of a copy, an interface parameter), as tsc's noUnusedParameters already reads it.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // Layer rule: plugins/infra renders from a plan object; reading the environment or the
    // command line is the composition root's job (src/composition/render-cli.ts).
    files: ['plugins/infra/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error',
        { object: 'process', property: 'env', message: 'plugins/infra renders from a plan: read the environment in src/composition and pass the plan in.' },
        { object: 'process', property: 'argv', message: 'plugins/infra renders from a plan: the render command lives in src/composition/render-cli.ts.' },
      ],
    },
  },
  {
    // A test walks parsed YAML, JSON and pg rows of any shape: a wrong access fails its
    // assertion, so the any-checks would only add casts.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
)
