/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest'],
    // github-slugger ships only as an ES module; jest here loads CommonJS, so swc compiles it.
    '/node_modules/github-slugger/.+\\.js$': ['@swc/jest'],
  },
  transformIgnorePatterns: ['/node_modules/(?!github-slugger/)'],
  setupFiles: ['<rootDir>/harness/quiet-temporal-logs.ts'],
  // The workflows are bundled once for the whole run, and every suite's worker takes that bundle.
  globalSetup: '<rootDir>/harness/global-setup.ts',
  globalTeardown: '<rootDir>/harness/global-teardown.ts',
  // Workflow bundling and the servers take seconds on two cores.
  testTimeout: 60_000,
};
