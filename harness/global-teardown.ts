/** After every suite: the workflows bundled for the run are removed. */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { WORKFLOWS_BUNDLE_VARIABLE } from './workflows-bundle';

export default async function globalTeardown(): Promise<void> {
  const bundle = process.env[WORKFLOWS_BUNDLE_VARIABLE];
  if (bundle) await rm(path.dirname(bundle), { recursive: true, force: true });
}
