/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  setupFiles: ['<rootDir>/test/helpers/quiet-temporal-logs.ts'],
  // Workflow bundling and the servers take seconds on two cores.
  testTimeout: 60_000,
};
