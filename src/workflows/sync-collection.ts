/**
 * syncCollection: one pass that brings a migrated collection in step with its old collection,
 * which the application kept changing. Deletions and user changes are made by one activity, first;
 * the faces added to the old collection are then migrated by a reindexCollection child
 * (`<sync>/additions`), through the same rate-limited IndexFaces queue as any run. While another
 * run into the target is in flight, the additions wait for a later pass: that run's records may
 * name old faces that have no row yet. `reindex sync --every` starts one pass a Schedule interval.
 */
import { executeChild, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { ControlActivities } from '../activities';
import { startingSearchAttributes, syncAdditionsRunId, type SyncInput, type SyncSummary } from '../shared';
import { SHORT_CALL, WALKING } from './activity-options';
import { reindexCollection } from './reindex-collection';

const { syncPass } = proxyActivities<ControlActivities>(WALKING);
const { runsIntoTarget } = proxyActivities<ControlActivities>(SHORT_CALL);

export async function syncCollection(input: SyncInput): Promise<SyncSummary> {
  const syncId = workflowInfo().workflowId;
  const startedAt = new Date().toISOString();
  const runsInFlight = await runsIntoTarget(input.targetCollectionId, []);
  const { records, ...pass } = await syncPass({
    syncId,
    sourceCollectionId: input.sourceCollectionId,
    ...(input.sourceRegion === undefined ? {} : { sourceRegion: input.sourceRegion }),
    targetCollectionId: input.targetCollectionId,
    placement: input.placement,
    withAdditions: runsInFlight.length === 0,
  });
  let additionsRun: SyncSummary['additionsRun'];
  if (records !== undefined) {
    const run = await executeChild(reindexCollection, {
      workflowId: syncAdditionsRunId(syncId),
      staticSummary: `faces added to ${input.sourceCollectionId} → ${input.targetCollectionId}`,
      typedSearchAttributes: startingSearchAttributes(input.targetCollectionId),
      args: [
        {
          ...input.run,
          manifest: records,
          targetCollectionId: input.targetCollectionId,
          sourceCollectionId: input.sourceCollectionId,
          ...(input.sourceRegion === undefined ? {} : { sourceRegion: input.sourceRegion }),
        },
      ],
    });
    additionsRun = {
      workflowId: run.workflowId,
      status: run.status,
      images: run.images,
      matched: run.matched,
      dlq: run.dlq,
      dlqByReason: run.dlqByReason,
    };
  }
  return {
    syncId,
    sourceCollectionId: input.sourceCollectionId,
    targetCollectionId: input.targetCollectionId,
    startedAt,
    ...pass,
    runsInFlight,
    ...(additionsRun === undefined ? {} : { additionsRun }),
    endedAt: new Date().toISOString(),
  };
}
