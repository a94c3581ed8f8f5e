/**
 * Which workflows a compiled worker runs: the bundle `npm run build` wrote, only while it is as new
 * as the code around it and made with the installed SDK; otherwise none, so the worker bundles its own.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { prebuiltBundle } from '../../src/worker';
import { PREBUILT_BUNDLES } from '../../src/workflow-bundle';

let dist: string;
const encrypting = { failureConverterPath: '/dist/encryption/failure-converter.js' };
const SDK = '1.24.0';

/** Writes `file` in dist with its modification time `secondsAgo` before now; the stamp names `sdk`. */
function writtenAgo(file: string, secondsAgo: number, sdk = SDK): void {
  const at = new Date(Date.now() - secondsAgo * 1000);
  writeFileSync(path.join(dist, file), file === '.built' ? JSON.stringify({ temporalWorkflow: sdk }) : '');
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

  expect(prebuiltBundle(undefined, dist, SDK)).toEqual({ codePath: path.join(dist, PREBUILT_BUNDLES.plain) });
  expect(prebuiltBundle(encrypting, dist, SDK)).toEqual({ codePath: path.join(dist, PREBUILT_BUNDLES.encrypted) });
});

test('code compiled again after the bundles were written: no bundle, the worker bundles the workflows of today', () => {
  writtenAgo(PREBUILT_BUNDLES.plain, 60);
  writtenAgo(PREBUILT_BUNDLES.encrypted, 60);
  writtenAgo('.built', 5);

  expect(prebuiltBundle(undefined, dist, SDK)).toBeUndefined();
  expect(prebuiltBundle(encrypting, dist, SDK)).toBeUndefined();
});

test('code compiled but never bundled, or not compiled at all: no bundle', () => {
  writtenAgo('.built', 5);
  expect(prebuiltBundle(undefined, dist, SDK)).toBeUndefined();

  rmSync(path.join(dist, '.built'));
  writtenAgo(PREBUILT_BUNDLES.plain, 5);
  expect(prebuiltBundle(undefined, dist, SDK)).toBeUndefined();
});

test('an SDK installed since the build: no bundle, as the bundle holds the older workflow runtime', () => {
  writtenAgo('.built', 60, '1.23.0');
  writtenAgo(PREBUILT_BUNDLES.plain, 55);

  expect(prebuiltBundle(undefined, dist, SDK)).toBeUndefined();
  expect(prebuiltBundle(undefined, dist, '1.23.0')).toEqual({ codePath: path.join(dist, PREBUILT_BUNDLES.plain) });
});

test('the build installed here names the SDK installed here', () => {
  const built = path.resolve(__dirname, '../../dist');
  expect(prebuiltBundle(undefined, built)).toEqual({ codePath: path.join(built, PREBUILT_BUNDLES.plain) });
});
