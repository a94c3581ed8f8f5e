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
  // Suites mostly wait (on rates, timers, heartbeats): three at once keep both cores busy.
  // Each jest worker past the first gets a rekognition-local of its own (harness/test-workers.ts).
  maxWorkers: Number(process.env.REINDEX_TEST_WORKERS ?? 3),
  globalTeardown: '<rootDir>/harness/global-teardown.ts',
  // Workflow bundling and the servers take seconds on two cores.
  testTimeout: 60_000,
};
