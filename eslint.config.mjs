// Lint for src/, test/ and bench/: typescript-eslint's recommended rules plus the type-aware ones that catch
// what tsc does not (a promise nobody awaits, a switch that forgets a case). Formatting is Prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers below src/csi: none of them may know CSI (DEVELOPERS.md, "lower layers never import higher ones"). */
const LOWER_LAYERS = ['block', 'object', 'openstack', 'mount', 'fuse', 'config', 'metrics', 'simulator', 'kube'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**', 'test/deploy/schemas/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // A leading underscore marks a parameter an interface requires but this implementation does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Tests read decoded gRPC messages, YAML documents and JSON answers whose shape is what they assert on.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The few CommonJS/ESM scripts (jest config, its reporter, the schema validator) run in Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        module: 'writable',
        require: 'readonly',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
      },
    },
  },
  ...LOWER_LAYERS.map((layer) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['../csi/*', '../csi'], message: `src/${layer} is below src/csi and must not import it` },
          ],
        },
      ],
    },
  })),
);
