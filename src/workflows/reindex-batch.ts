/**
 * reindexBatch: one chunk of the records file. Loads the chunk and runs reindexImage for each record
 * with a bounded number in flight. Each image sends its matched faces to the results queue and its
 * faces that could not be migrated to the review DLQ itself, and answers with counts; the batch
 * sends to review the faces of images that failed, with their reason.
 *
 * Pause stops starting images and calls back those still waiting on the rate-limited queue (they
 * run again on resume); images whose IndexFaces call started finish. Cancellation does the same,
 * publishes what finished, so nothing indexed is left unrecorded, and counts the rest as not
 * processed. While its run holds back for the drain, it starts no image and lets those in flight
 * finish. Images failing in a row for one reason are held back from review: when they reach
 * the run's --pause-after-failures, the batch pauses itself and tells its run, and they run again
 * on resume, so a fault that fails every image (a missing permission, a wrong bucket) does not
 * send the whole records file to review.
 */
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities, IndexFacesActivities } from '../activities';
import type { ChunkEntry } from '../activities/manifest';
import { type ImageTally, type ResultRow, type ReviewItem, type RowRetraction, tallyOf } from '../domain/outcomes';
import { slicesByJsonSize } from '../domain/payloads';
import { addReasonCounts, ReasonCode } from '../domain/reasons';
import {
  type BatchSummary,
  type BatchTotals,
  breakerTrippedSignal,
  DEFAULT_PAUSE_AFTER_FAILURES,
  DEFAULT_RETRY_MINUTES,
  pauseSignal,
  type ReindexBatchInput,
  resultsBacklogSignal,
  resumeSignal,
  streakAtEndSignal,
  streakVerdictSignal,
  taskQueues,
} from '../shared';
import { INDEXING, SENDING, SHORT_CALL } from './activity-options';
import { emptyTotals } from './run-state';

const { loadChunk } = proxyActivities<ControlActivities>(SHORT_CALL);

const { publishResults, sendToReview, retractRows } = proxyActivities<ControlActivities>(SENDING);

/**
 * Called back (paused, cancelled), an image waiting on the queue stops at once and one that
 * started finishes, its outcome kept.
 */
const reindexImageOn = (taskQueue: string, cancellationType?: ActivityCancellationType, fairnessKey?: string) =>
  proxyActivities<IndexFacesActivities>({
    ...INDEXING,
    taskQueue: taskQueues(taskQueue).indexFaces,
    ...(fairnessKey === undefined ? {} : { priority: { fairnessKey } }),
    ...(cancellationType === undefined ? {} : { cancellationType }),
  }).reindexImage;

/** Outcomes are published once this many rows or review items are waiting. */
const PUBLISH_EVERY = 100;
/**
 * Batches recorded before this patch neither call back their images on pause or cancel nor hold
 * failures for the circuit breaker.
 */
const FAILURES_THAT_END = 'failures-that-end';
/**
 * Batches recorded before this patch publish the rows and review items their images answer with;
 * since, each image publishes its own and answers with their tally, so a batch's history holds
 * counts, not outcomes, whatever the faces an image holds.
 */
const IMAGES_PUBLISH = 'images-publish-outcomes';
/**
 * Batches recorded before this patch send the failures they end with to review at once; since,
 * they ask their run first, which trips the breaker when failures at the ends of batches add up.
 */
const BREAKER_ACROSS_BATCHES = 'breaker-across-batches';
/** Batches recorded before this patch schedule their images with no fairness key. */
const FAIRNESS_BY_TARGET = 'fairness-by-target';

/**
 * The fairness key of a target's images: runs into different collections take turns on the one
 * rate-limited IndexFaces queue, so a small migration is not queued behind a large one. The key is
 * readable in the history, which an encrypted run's collection names must not be: it is a 32-bit
 * FNV-1a hash of the name (workflow code has no crypto module), so two targets share a turn only
 * when their hashes collide.
 */
function fairnessKeyOf(targetCollectionId: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < targetCollectionId.length; i += 1)
    hash = Math.imul(hash ^ targetCollectionId.charCodeAt(i), 0x01000193);
  return `target-${(hash >>> 0).toString(16).padStart(8, '0')}`;
}

/** Reason codes that fail one image; any other permanent failure (the target gone) fails the run. */
const IMAGE_REASONS = new Set<string>([
  ReasonCode.ImageNotFound,
  ReasonCode.AccessDenied,
  ReasonCode.InvalidImageFormat,
  ReasonCode.ImageEmpty,
  ReasonCode.ImageTooLarge,
  ReasonCode.ImageTooSmall,
  ReasonCode.InvalidRecord,
  ReasonCode.RetriesExhausted,
]);

function countReview(totals: BatchTotals, items: ReviewItem[]): void {
  for (const item of items) addReasonCounts(totals.dlqByReason, item.reason);
}

/** The image-level reason of a permanent reindexImage failure, or undefined when the failure is not one. */
function imageFailureReason(error: unknown): ReasonCode | undefined {
  const cause = error instanceof ActivityFailure ? error.cause : undefined;
  return cause instanceof ApplicationFailure && cause.type && IMAGE_REASONS.has(cause.type)
    ? (cause.type as ReasonCode)
    : undefined;
}

/** Indexes every record of one chunk of the records file into the target collection. */
export async function reindexBatch(input: ReindexBatchInput): Promise<BatchSummary> {
  const failuresThatEnd = patched(FAILURES_THAT_END);
  const imagesPublish = patched(IMAGES_PUBLISH);
  const breakerAcrossBatches = failuresThatEnd && patched(BREAKER_ACROSS_BATCHES);
  const reindexImage = reindexImageOn(
    workflowInfo().taskQueue,
    failuresThatEnd ? ActivityCancellationType.WAIT_CANCELLATION_COMPLETED : undefined,
    patched(FAIRNESS_BY_TARGET) ? fairnessKeyOf(input.targetCollectionId) : undefined,
  );
  const pauseAfterFailures = failuresThatEnd ? (input.pauseAfterFailures ?? DEFAULT_PAUSE_AFTER_FAILURES) : 0;
  const retryForMs = (input.retryMinutes ?? DEFAULT_RETRY_MINUTES) * 60_000;
  let paused = input.paused;
  let stopping = false;
  /** The scope of each image in flight, to call back those not started yet. */
  const inFlight = new Set<CancellationScope>();
  /** Images not started yet, or called back to start again. */
  const pending: ChunkEntry[] = [];
  /** Failures in a row for one reason, not yet sent to review: if the batch pauses, they run again on resume. */
  let streak: { reason: ReasonCode; held: { entry: ChunkEntry; detail: string }[] } | undefined;
  /** Stops the images in flight that have not started, and puts them and the held failures back to run later. */
  const callBack = () => {
    if (!failuresThatEnd) return;
    for (const scope of inFlight) scope.cancel();
    pending.unshift(...(streak?.held ?? []).map(({ entry }) => entry));
    streak = undefined;
  };
  setHandler(pauseSignal, () => {
    paused = true;
    callBack();
  });
  setHandler(resumeSignal, () => {
    paused = false;
  });
  let heldBack = input.heldBack ?? false;
  setHandler(resultsBacklogSignal, ({ held }) => {
    heldBack = held;
  });
  /** The run's answer about the streak this batch ended with; undefined until it comes. */
  let verdict: { trip: boolean } | undefined;
  setHandler(streakVerdictSignal, (answer) => {
    verdict = answer;
  });
  void CancellationScope.current().cancelRequested.catch(() => {
    stopping = true;
    callBack();
  });

  // Cancellation is turned into `stopping` above, so that in-flight images and publishing finish.
  return CancellationScope.nonCancellable(async () => {
    const source =
      input.sourceCollectionId === undefined
        ? undefined
        : {
            collectionId: input.sourceCollectionId,
            ...(input.sourceRegion === undefined ? {} : { region: input.sourceRegion }),
          };
    const entries = await loadChunk(input.chunkKey, {
      runId: input.runId,
      targetCollectionId: input.targetCollectionId,
      decision: input.options,
      ...(source ? { source } : {}),
    });
    const totals = emptyTotals();
    const results: ResultRow[] = [];
    const review: ReviewItem[] = [];
    const retractions: RowRetraction[] = [];
    pending.push(...entries);
    let fatal: Error | undefined;

    const publish = async () => {
      const rows = results.splice(0);
      const items = review.splice(0);
      const retracted = retractions.splice(0);
      // Only re-runs under other settings retract, so runs recorded before retractions replay alike.
      // Activities are scheduled in the order called: histories recorded before expect this one.
      const sent = imagesPublish && rows.length === 0 ? [] : [publishResults(rows)];
      if (imagesPublish) sent.push(...slicesByJsonSize(items).map((slice) => sendToReview(slice)));
      else sent.push(sendToReview(items));
      if (retracted.length > 0) sent.push(retractRows(retracted));
      await Promise.all(sent);
    };

    const countImage = ({ record }: ChunkEntry) => {
      totals.images += 1;
      totals.faces += record.Faces.length;
    };

    const countTally = (tally: ImageTally) => {
      totals.matched += tally.matched;
      for (const count of Object.values(tally.reviewByReason)) totals.unmatchedOld += count;
      if (input.options.unmatched === 'delete') totals.unmatchedNewDeleted += tally.unmatchedNew;
      else totals.unmatchedNewKept += tally.unmatchedNew;
      if (tally.reusedEarlierIndexing) totals.reusedIndexings += 1;
      addReasonCounts(totals.dlqByReason, tally.reviewByReason);
    };

    const reviewFailure = (entry: ChunkEntry, reason: ReasonCode, detail: string) => {
      const { index, record } = entry;
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
      countImage(entry);
    };

    const endStreak = () => {
      if (streak === undefined) return;
      const { reason, held } = streak;
      streak = undefined;
      for (const { entry, detail } of held) reviewFailure(entry, reason, detail);
    };

    /** Pauses the batch and tells the run, which pauses the others; the held images run again on resume. */
    const trip = async ({ reason, held }: NonNullable<typeof streak>) => {
      paused = true;
      callBack();
      const trip = { reason, images: held.length, batch: input.batch, firstError: held[0]?.detail ?? '' };
      // A batch run on its own has no run to tell.
      await getExternalWorkflowHandle(input.runId)
        .signal(breakerTrippedSignal, trip)
        .catch(() => undefined);
    };

    const fail = async (entry: ChunkEntry, reason: ReasonCode, detail: string) => {
      if (pauseAfterFailures === 0) return reviewFailure(entry, reason, detail);
      if (streak?.reason !== reason) {
        endStreak();
        streak = { reason, held: [] };
      }
      streak.held.push({ entry, detail });
      if (streak.held.length >= pauseAfterFailures) await trip(streak);
    };

    const migrate = async (entry: ChunkEntry) => {
      const { index, record, indexedBefore, oldFacesGone } = entry;
      const scope = new CancellationScope();
      inFlight.add(scope);
      try {
        const answer = await scope.run(() =>
          reindexImage({
            runId: input.runId,
            recordIndex: index,
            record,
            sourceCollectionId: input.sourceCollectionId,
            targetCollectionId: input.targetCollectionId,
            options: input.options,
            indexedBefore,
            ...(oldFacesGone ? { oldFacesGone } : {}),
            ...(failuresThatEnd ? { retryForMs } : {}),
            ...(imagesPublish ? { publish: true } : {}),
          }),
        );
        if ('results' in answer) {
          results.push(...answer.results);
          review.push(...answer.review);
          retractions.push(...(answer.retractions ?? []));
          countTally(tallyOf(answer));
        } else {
          countTally(answer);
        }
        countImage(entry);
        endStreak();
      } catch (error) {
        const reason = imageFailureReason(error);
        if (failuresThatEnd && (isCancellation(error) || (reason !== undefined && paused))) {
          // Called back before it started, or failed while the batch is paused: it runs again on resume.
          pending.unshift(entry);
          return;
        }
        if (reason === undefined) {
          fatal ??= error instanceof Error ? error : new Error(String(error));
          countImage(entry);
          return;
        }
        await fail(
          entry,
          reason,
          error instanceof ActivityFailure && error.cause ? error.cause.message : String(error),
        );
      } finally {
        inFlight.delete(scope);
      }
    };

    /**
     * Asks the run about the failures this batch ended with. Whether it trips the breaker or a
     * pause came meanwhile, the held images are back in `pending`, to run on resume.
     */
    let endedFailing = false;
    const askRunAboutStreak = async () => {
      endedFailing = false;
      if (!breakerAcrossBatches || streak === undefined || stopping || fatal !== undefined) return;
      verdict = undefined;
      const { reason, held } = streak;
      const told = await getExternalWorkflowHandle(input.runId)
        .signal(streakAtEndSignal, {
          batch: input.batch,
          reason,
          images: held.length,
          firstError: held[0]?.detail ?? '',
        })
        .then(
          () => true,
          // A batch run on its own has no run to ask.
          () => false,
        );
      if (!told) return;
      await condition(() => verdict !== undefined || stopping);
      // Set by the signal handler while the condition waited.
      const answer = verdict as { trip: boolean } | undefined;
      if (answer?.trip) {
        paused = true;
        callBack();
      }
      endedFailing = (streak as typeof streak | undefined) !== undefined;
    };

    const started: Promise<void>[] = [];
    // A batch whose run tripped the breaker on its last failures runs them again after resume.
    do {
      while (fatal === undefined) {
        const idle = () => pending.length === 0 && inFlight.size === 0;
        await condition(
          () =>
            stopping ||
            fatal !== undefined ||
            idle() ||
            (!paused && !heldBack && inFlight.size < input.imagesInFlight && pending.length > 0),
        );
        if (stopping || fatal !== undefined || idle()) break;
        const entry = pending.shift();
        if (entry) started.push(migrate(entry));
        if (results.length >= PUBLISH_EVERY || review.length >= PUBLISH_EVERY) await publish();
      }
      await Promise.all(started);
      await askRunAboutStreak();
    } while (pending.length > 0 && !stopping && fatal === undefined);
    endStreak();
    await publish();
    if (fatal !== undefined) throw fatal;
    totals.notProcessed = pending.length;
    return { batch: input.batch, ...totals, ...(endedFailing ? { endedFailing } : {}) };
  });
}
