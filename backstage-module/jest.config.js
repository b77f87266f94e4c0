// Jest, as Backstage packages run their tests (`backstage-cli package test` is Jest with an SWC transform):
// plain Jest with @swc/jest here, so the tests need neither a build step nor @backstage/cli.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: 'inline',
      },
    ],
  },
  // Several tests start a real Backstage backend; on a busy 2-core machine that can take longer than
  // Jest's default of 5 s. The end-to-end tests set their own, longer timeouts.
  testTimeout: 30_000,
};
