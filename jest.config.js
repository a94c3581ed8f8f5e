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
  setupFiles: ['<rootDir>/test/helpers/quiet-temporal-logs.ts'],
  // Workflow bundling and the servers take seconds on two cores.
  testTimeout: 60_000,
};
