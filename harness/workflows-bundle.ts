/** The workflows as jest's global setup bundled them, for every suite of the run to share. */
import type { WorkflowBundleOption } from '@temporalio/worker';

export const WORKFLOWS_BUNDLE_VARIABLE = 'REINDEX_TEST_WORKFLOWS_BUNDLE';

/** The shared bundle; a suite run without the global setup bundles its own. */
export function sharedWorkflowBundle(): (WorkflowBundleOption & { codePath: string }) | undefined {
  const codePath = process.env[WORKFLOWS_BUNDLE_VARIABLE];
  return codePath ? { codePath } : undefined;
}
