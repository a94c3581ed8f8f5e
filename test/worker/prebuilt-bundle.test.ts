/**
 * Which workflows a compiled worker runs: the bundle `npm run build` wrote, only while it is as new
 * as the code around it; after the code is compiled again, none, so the worker bundles its own.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prebuiltBundle } from '../../src/worker';
import { PREBUILT_BUNDLES } from '../../src/workflow-bundle';

let dist: string;
const encrypting = { failureConverterPath: '/dist/encryption/failure-converter.js' };

/** Writes `file` in dist with its modification time `secondsAgo` before now. */
function writtenAgo(file: string, secondsAgo: number): void {
  const at = new Date(Date.now() - secondsAgo * 1000);
  writeFileSync(path.join(dist, file), '');
  utimesSync(path.join(dist, file), at, at);
}

beforeEach(() => {
  dist = mkdtempSync(path.join(tmpdir(), 'reindex-dist-'));
});

afterEach(() => {
  rmSync(dist, { recursive: true, force: true });
});

test('a build bundled after compiling: the plain bundle without encryption, the encrypted one with it', () => {
  writtenAgo('.built', 60);
  writtenAgo(PREBUILT_BUNDLES.plain, 55);
  writtenAgo(PREBUILT_BUNDLES.encrypted, 50);

  expect(prebuiltBundle(undefined, dist)).toEqual({ codePath: path.join(dist, PREBUILT_BUNDLES.plain) });
  expect(prebuiltBundle(encrypting, dist)).toEqual({ codePath: path.join(dist, PREBUILT_BUNDLES.encrypted) });
});

test('code compiled again after the bundles were written: no bundle, the worker bundles the workflows of today', () => {
  writtenAgo(PREBUILT_BUNDLES.plain, 60);
  writtenAgo(PREBUILT_BUNDLES.encrypted, 60);
  writtenAgo('.built', 5);

  expect(prebuiltBundle(undefined, dist)).toBeUndefined();
  expect(prebuiltBundle(encrypting, dist)).toBeUndefined();
});

test('code compiled but never bundled, or not compiled at all: no bundle', () => {
  writtenAgo('.built', 5);
  expect(prebuiltBundle(undefined, dist)).toBeUndefined();

  rmSync(path.join(dist, '.built'));
  writtenAgo(PREBUILT_BUNDLES.plain, 5);
  expect(prebuiltBundle(undefined, dist)).toBeUndefined();
});
