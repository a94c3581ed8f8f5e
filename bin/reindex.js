#!/usr/bin/env node
// Runs the TypeScript CLI directly: no build step between a change and `npx reindex`.
require('tsx/cjs/api').register();
require('../src/client.ts');
