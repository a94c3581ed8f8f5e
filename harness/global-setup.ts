/**
 * Before every suite: the workflows bundled once for the whole jest run, not once per suite's
 * worker (webpack takes seconds on two cores, and most suites start a worker). The file's path
 * reaches the suites through the environment, which their processes inherit.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { writeWorkflowBundle } from '../src/workflow-bundle';
import { WORKFLOWS_BUNDLE_VARIABLE } from './workflows-bundle';

export default async function globalSetup(): Promise<void> {
  const directory = await mkdtemp(path.join(tmpdir(), 'reindex-test-workflows-'));
  const bundle = path.join(directory, 'workflows.js');
  await writeWorkflowBundle(bundle);
  process.env[WORKFLOWS_BUNDLE_VARIABLE] = bundle;
}
