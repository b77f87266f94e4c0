// ESLint (flat config): typescript-eslint's recommended TypeScript rules, and eslint-plugin-jest's recommended
// rules for the tests (Backstage's `backstage-cli package lint` config lints tests with that plugin too). Two
// type-aware rules on top, because the module is mostly async code run by a scheduler: a promise that is neither
// awaited nor handled is an error.
import js from '@eslint/js';
import jest from 'eslint-plugin-jest';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // e2e/app/ is Backstage's app template (the end-to-end test's app), not this module's code.
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'e2e/app/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    files: ['src/**/*.test.ts', 'src/**/*.bench.ts'],
    ...jest.configs['flat/recommended'],
  },
  {
    // Plain Node.js scripts: the Jest config, scripts/ and e2e/backend/start.js.
    files: ['**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: Object.fromEntries(
        ['module', 'require', 'process', 'console', '__dirname', '__filename', 'fetch', 'setTimeout'].map(g => [
          g,
          g === 'module' ? 'writable' : 'readonly',
        ]),
      ),
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
