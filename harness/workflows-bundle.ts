/** The workflows as jest's global setup bundled them (`npm run build`), for every suite of the run to share. */
import path from 'node:path';
import type { WorkflowBundleOption } from '@temporalio/worker';
import { PREBUILT_BUNDLES } from '../src/workflow-bundle';

export const WORKFLOWS_BUNDLE_VARIABLE = 'REINDEX_TEST_WORKFLOWS_BUNDLE';

/**
 * The shared bundle, with the encrypting failure converter when `encrypted`, as the worker of an
 * encrypting deployment takes it; a suite run without the global setup bundles its own.
 */
export function sharedWorkflowBundle(encrypted = false): (WorkflowBundleOption & { codePath: string }) | undefined {
  const plain = process.env[WORKFLOWS_BUNDLE_VARIABLE];
  if (!plain) return undefined;
  return { codePath: encrypted ? path.join(path.dirname(plain), PREBUILT_BUNDLES.encrypted) : plain };
}
