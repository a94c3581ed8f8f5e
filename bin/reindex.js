#!/usr/bin/env node
// Runs the compiled CLI (bin/build.js). In a clone, a change to src/ is compiled first, in a
// fraction of a second, so no build step stands between a change and `npx reindex`.
const fs = require('node:fs');
const path = require('node:path');

if (fs.existsSync(path.join(__dirname, '..', 'src'))) require('./build').buildIfStale();
require('../dist/client.js');
