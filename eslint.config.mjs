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
    },
  },
  ...LOWER_LAYERS.map((layer) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['../csi/*', '../csi'], message: `src/${layer} is below src/csi and must not import it` }] }],
    },
  })),
);
