#!/usr/bin/env node
// Runs the compiled worker (bin/build.js), with the workflow bundles `npm run build` wrote. In a
// clone, a change to src/ is compiled first; the worker then bundles its workflows at start until
// the next `npm run build`.
const fs = require('node:fs');
const path = require('node:path');

if (fs.existsSync(path.join(__dirname, '..', 'src'))) require('./build').buildIfStale();
require('../dist/worker.js').runWorkerProcess();
