/**
 * reindexBatch: one chunk of the records file. Loads the chunk, runs reindexImage for each record
 * with a bounded number in flight, and publishes the outcomes in batches: matched faces to the
 * results queue, faces that could not be migrated to the review DLQ with their reason.
 *
 * Pause stops starting images; images in flight finish. Cancellation stops starting images too,
 * lets those in flight finish and publishes their outcomes, so nothing indexed is left unrecorded;
 * the summary counts the images never started.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities, IndexFacesActivities } from '../activities';
import type { ChunkEntry } from '../activities/manifest';
import type { ResultRow, ReviewItem, RowRetraction } from '../domain/outcomes';
import { addReasonCounts, ReasonCode } from '../domain/reasons';
import { type BatchSummary, type BatchTotals, pauseSignal, REINDEX_IMAGE_ATTEMPT_MS, REINDEX_IMAGE_HEARTBEAT_TIMEOUT_MS, type ReindexBatchInput, resumeSignal, taskQueues } from '../shared';

const { loadChunk } = proxyActivities<ControlActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/**
 * Sending outcomes takes as long as SQS takes; the attempt heartbeats while it runs, so a dead
 * worker is noticed in 30 s and a slow SQS never times a live one out (a timed-out attempt would
 * send its messages again, and a loaded queue would get slower still).
 */
const { publishResults, sendToReview, retractRows } = proxyActivities<ControlActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/**
 * Throttling and 5xx are retried without limit, backing off to one try every two minutes: a run
 * waits out a quota rather than losing images. Permanent errors are non-retryable and end up here.
 */
const reindexImageOn = (taskQueue: string) =>
  proxyActivities<IndexFacesActivities>({
    taskQueue: taskQueues(taskQueue).indexFaces,
    startToCloseTimeout: REINDEX_IMAGE_ATTEMPT_MS,
    heartbeatTimeout: REINDEX_IMAGE_HEARTBEAT_TIMEOUT_MS,
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' },
  }).reindexImage;

/** Outcomes are published once this many rows or review items are waiting. */
const PUBLISH_EVERY = 100;

/** Reason codes that fail one image; any other permanent failure (the target gone) fails the run. */
const IMAGE_REASONS = new Set<string>([
  ReasonCode.ImageNotFound,
  ReasonCode.AccessDenied,
  ReasonCode.InvalidImageFormat,
  ReasonCode.ImageEmpty,
  ReasonCode.ImageTooLarge,
  ReasonCode.ImageTooSmall,
  ReasonCode.InvalidRecord,
]);

export function emptyTotals(): BatchTotals {
  return {
    images: 0,
    faces: 0,
    matched: 0,
    unmatchedOld: 0,
    unmatchedNewDeleted: 0,
    unmatchedNewKept: 0,
    reusedIndexings: 0,
    notProcessed: 0,
    dlqByReason: {},
  };
}

function countReview(totals: BatchTotals, items: ReviewItem[]): void {
  for (const item of items) addReasonCounts(totals.dlqByReason, item.reason);
}

/** The image-level reason of a permanent reindexImage failure, or undefined when the failure is not one. */
function imageFailureReason(error: unknown): ReasonCode | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  return cause instanceof ApplicationFailure && cause.type && IMAGE_REASONS.has(cause.type) ? (cause.type as ReasonCode) : undefined;
}

/** Indexes every record of one chunk of the records file into the target collection. */
export async function reindexBatch(input: ReindexBatchInput): Promise<BatchSummary> {
  const reindexImage = reindexImageOn(workflowInfo().taskQueue);
  let paused = input.paused;
  let stopping = false;
  setHandler(pauseSignal, () => {
    paused = true;
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  void CancellationScope.current().cancelRequested.catch(() => {
    stopping = true;
  });

  // Cancellation is turned into `stopping` above, so that in-flight images and publishing finish.
  return CancellationScope.nonCancellable(async () => {
    const entries = await loadChunk(input.chunkKey, { runId: input.runId, targetCollectionId: input.targetCollectionId, decision: input.options });
    const totals = emptyTotals();
    const results: ResultRow[] = [];
    const review: ReviewItem[] = [];
    const retractions: RowRetraction[] = [];
    let inFlight = 0;
    let fatal: Error | undefined;

    const publish = async () => {
      const rows = results.splice(0);
      const items = review.splice(0);
      const retracted = retractions.splice(0);
      // Only re-runs under other settings retract, so runs recorded before retractions replay alike.
      await Promise.all([publishResults(rows), sendToReview(items), ...(retracted.length > 0 ? [retractRows(retracted)] : [])]);
    };

    const migrate = async ({ index, record, indexedBefore }: ChunkEntry) => {
      inFlight += 1;
      try {
        const outcome = await reindexImage({
          runId: input.runId,
          recordIndex: index,
          record,
          sourceCollectionId: input.sourceCollectionId,
          targetCollectionId: input.targetCollectionId,
          options: input.options,
          indexedBefore,
        });
        totals.matched += outcome.results.length;
        totals.unmatchedOld += outcome.review.length;
        if (input.options.unmatched === 'delete') totals.unmatchedNewDeleted += outcome.unmatchedNewFaces.length;
        else totals.unmatchedNewKept += outcome.unmatchedNewFaces.length;
        if (outcome.reusedEarlierIndexing) totals.reusedIndexings += 1;
        results.push(...outcome.results);
        review.push(...outcome.review);
        retractions.push(...(outcome.retractions ?? []));
        countReview(totals, outcome.review);
      } catch (error) {
        const reason = imageFailureReason(error);
        if (reason === undefined) {
          fatal ??= error instanceof Error ? error : new Error(String(error));
          return;
        }
        const detail = error instanceof ActivityFailure && error.cause ? error.cause.message : String(error);
        const items = record.Faces.map<ReviewItem>((face) => ({
          reason,
          detail,
          runId: input.runId,
          Bucket: record.Bucket,
          Key: record.Key,
          ExternalImageId: record.ExternalImageId,
          face,
          // The face and its image are enough for redrive; the whole record in every face's item
          // made a 100-face record a 2.8 MB activity input, over Temporal's payload limit.
          recordIndex: index,
        }));
        review.push(...items);
        countReview(totals, items);
      } finally {
        totals.images += 1;
        totals.faces += record.Faces.length;
        inFlight -= 1;
      }
    };

    const started: Promise<void>[] = [];
    let next = 0;
    while (next < entries.length && fatal === undefined) {
      await condition(() => stopping || fatal !== undefined || (!paused && inFlight < input.imagesInFlight));
      if (stopping || fatal !== undefined) break;
      const entry = entries[next];
      next += 1;
      if (entry) started.push(migrate(entry));
      if (results.length >= PUBLISH_EVERY || review.length >= PUBLISH_EVERY) await publish();
    }
    await Promise.all(started);
    await publish();
    if (fatal !== undefined) throw fatal;
    totals.notProcessed = entries.length - next;
    return { batch: input.batch, ...totals };
  });
}
