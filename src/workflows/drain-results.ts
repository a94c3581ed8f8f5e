/**
 * drainResultsQueue: drains the results queue into the results table until it is empty, for rows no
 * run is there to drain: those `reindex dlq requeue-results` sent back from the results DLQ.
 */
import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../activities';
import { DRAIN_WINDOW_MS } from './reindex-collection';
import { WALKING } from './activity-options';

const { drainContinuously } = proxyActivities<ControlActivities>(WALKING);

/** Rows written, counted across continue-as-new. */
export async function drainResultsQueue(writtenBefore = 0): Promise<{ written: number }> {
  let written = writtenBefore;
  for (;;) {
    const drained = await drainContinuously({
      runId: workflowInfo().workflowId,
      forMs: DRAIN_WINDOW_MS,
      untilEmpty: true,
    });
    written += drained.written;
    if (drained.queueEmpty) return { written };
    if (workflowInfo().continueAsNewSuggested) return continueAsNew<typeof drainResultsQueue>(written);
  }
}
