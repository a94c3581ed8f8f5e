#!/usr/bin/env node
/**
 * Compiles src/ into dist/: one CommonJS file per module, without a type check (`tsc --noEmit`
 * checks types). Commands then start without a TypeScript compiler in the process, which halves
 * the CPU a `reindex` command spends before it does anything. `npm run build` rebuilds dist/ from
 * scratch and bundles the workflows beside the worker, which then starts without webpack; the CLI
 * and the worker call `buildIfStale` so that in a clone a change to src/ is compiled before it runs.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src');
const DIST = path.join(ROOT, 'dist');
/**
 * Written after the code, before the bundles: its time is when dist/ last matched src/, and it names
 * the SDK's workflow runtime the bundles are made with.
 */
const STAMP = '.built';

function compile(outdir) {
  // Loaded here: a package ships dist/ alone and has no esbuild.
  require('esbuild').buildSync({
    entryPoints: [path.join(SRC, '**/*.ts')],
    outdir,
    outbase: SRC,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'warning',
  });
  const temporalWorkflow = require('@temporalio/workflow/package.json').version;
  fs.writeFileSync(path.join(outdir, STAMP), `${JSON.stringify({ temporalWorkflow })}\n`);
}

/** The latest change under src/: a file written, or a directory whose entries changed. */
function lastChangeMs() {
  let latest = fs.statSync(SRC).mtimeMs;
  for (const entry of fs.readdirSync(SRC, { recursive: true })) {
    latest = Math.max(latest, fs.statSync(path.join(SRC, entry)).mtimeMs);
  }
  return latest;
}

function buildIfStale() {
  const stamp = path.join(DIST, STAMP);
  const builtMs = fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
  if (lastChangeMs() >= builtMs) compile(DIST);
}

/**
 * Builds beside dist/ and swaps the result in whole, so that a worker or command running from
 * dist/ meanwhile (a bench beside the tests, say) never finds it missing or half written.
 */
function build() {
  const next = `${DIST}.next-${process.pid}`;
  const previous = `${DIST}.previous-${process.pid}`;
  fs.rmSync(next, { recursive: true, force: true });
  compile(next);
  // After the stamp: the worker takes a bundle only when it is as new as the code it was made from.
  execFileSync(process.execPath, [path.join(next, 'workflow-bundle.js'), '--prebuilt'], { stdio: 'inherit' });
  if (fs.existsSync(DIST)) fs.renameSync(DIST, previous);
  fs.renameSync(next, DIST);
  fs.rmSync(previous, { recursive: true, force: true });
}

module.exports = { build, buildIfStale };

if (require.main === module) build();
