/**
 * Every activity of the worker, built over one set of clients. Workflows `import type` this module
 * to type their activity proxies; the worker registers what it returns.
 */
import type { Config } from '../domain/config';
import type { AwsClients } from '../aws/clients';
import { createDrain } from './drain';
import { whileAlive } from './liveness';
import { createManifestActivities } from './manifest';
import { createQueueActivities } from './queues';
import {
  clientPerRegion,
  createRekognitionActivities,
  createSourceFaceFinder,
  type PublishOutcome,
} from './rekognition';
import { createResultsActivities } from './results';
import { createResultsDlqActivities } from './results-dlq';
import { createRunObjects } from '../stores/run-objects';
import { createSyncActivities, type SyncPassInput } from './sync';
import { createRunsInFlight, createTemporalActivities, type TemporalVisibility } from './temporal';
import { createUserActivities } from './users';

/**
 * `temporal` is the worker's view of Temporal's visibility, for a sync to see the runs in flight.
 * Tests shorten `orphanGraceMs`, how long reconcile waits for other runs' indexing before deleting,
 * and `resultsWaitLimitMs`, how long a row may wait in the results queue before its run holds back.
 */
export function createActivities(
  { s3, sqs, dynamodb, rekognition, indexFaces }: AwsClients,
  config: Config,
  temporal: TemporalVisibility,
  { orphanGraceMs, resultsWaitLimitMs }: { orphanGraceMs?: number; resultsWaitLimitMs?: number } = {},
) {
  const queues = createQueueActivities({ sqs, s3, config });
  const { drainPass, accountRunRows, ...results } = createResultsActivities({
    sqs,
    dynamodb,
    s3,
    config,
    runInFlight: createRunsInFlight(temporal),
  });
  const resultsDlq = createResultsDlqActivities({ sqs, s3, config });
  const runObjects = createRunObjects(s3, config.bucket);
  const publishOutcome: PublishOutcome = async (outcome) => {
    await Promise.all([
      queues.publishResults(outcome.results),
      queues.sendToReview(outcome.review),
      results.retractRows(outcome.retractions ?? []),
    ]);
  };
  // One client per source region, for the face model check and the erasure checks alike.
  const rekognitionIn = clientPerRegion();
  const { reindexImage, ...rekognitionControl } = createRekognitionActivities({
    rekognition,
    indexFacesClient: indexFaces,
    s3,
    config,
    orphanGraceMs,
    rekognitionIn,
    publishOutcome,
  });
  const sync = createSyncActivities({
    rekognition,
    rekognitionIn,
    dynamodb,
    s3,
    config,
    sendToReview: queues.sendToReview,
  });
  const drain = createDrain({
    drainPass,
    accountRunRows,
    deleteDuplicateFaces: rekognitionControl.deleteDuplicateFaces,
    sendToReview: queues.sendToReview,
    settleDuplicates: results.settleDuplicates,
    resultsWaitLimitMs,
  });
  return {
    /** Activities of the control task queue. */
    control: {
      ...createManifestActivities({
        s3,
        sqs,
        config,
        findSourceFaces: createSourceFaceFinder(rekognition, rekognitionIn),
      }),
      // Their length follows SQS's; other activities send to review inside their own heartbeats.
      publishResults: (rows: Parameters<typeof queues.publishResults>[0]) =>
        whileAlive(() => queues.publishResults(rows)),
      sendToReview: (items: Parameters<typeof queues.sendToReview>[0]) => whileAlive(() => queues.sendToReview(items)),
      ...results,
      ...drain,
      // It reads the whole results DLQ, which may take a while.
      countResultsInDlq: (runId: string) => whileAlive(() => resultsDlq.countResultsInDlq(runId)),
      // One call per object of the run: a large run has many chunks.
      tagRunEnded: (runId: string) => whileAlive(() => runObjects.tagEnded(runId)),
      ...createUserActivities({ rekognition, dynamodb, sqs, config }),
      ...rekognitionControl,
      // A pass lists a whole collection and reads the target's rows, between heartbeats of its own.
      syncPass: (input: SyncPassInput) => whileAlive(() => sync.syncPass(input)),
      ...createTemporalActivities(temporal),
    },
    /** IndexFaces, alone on its rate-limited task queue. */
    indexFaces: { reindexImage },
  };
}

export type ControlActivities = ReturnType<typeof createActivities>['control'];
export type IndexFacesActivities = ReturnType<typeof createActivities>['indexFaces'];
