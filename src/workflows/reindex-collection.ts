/**
 * reindexCollection: one migration run, from records file to migrated collection (docs/architecture.md,
 * "Shape"). prepare target → split the records file → a sliding window of reindexBatch children
 * → drain the results queue into DynamoDB → migrate users → reconcile → report.
 *
 * The run continues as new every `batchesPerExecution` batches (or when Temporal suggests it),
 * carrying its cursor and totals, so its history stays small however large the file. Cancelling
 * stops it cleanly: no new image starts, children finish what is in flight, and the drain,
 * users, reconcile and report phases still run, so results, DLQ and target agree.
 *
 * Every drain, after each batch and at the end, may refuse rows: a second row of an old face in
 * this run, from a second record naming it. Their new faces are deleted and they go to the review
 * DLQ as DUPLICATE_FACE_ID, counted there instead of as matched.
 */
import {
  ActivityCancellationType,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  type ChildWorkflowHandle,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControlActivities } from '../activities';
import type { DrainedWindow } from '../activities/drain';
import { ReasonCode } from '../domain/reasons';
import { runSettingsProblems } from '../domain/run-input';
import {
  type BatchSummary,
  type BreakerTrip,
  breakerTrippedSignal,
  chunkKey,
  type BatchTotals,
  type CarriedState,
  DEFAULT_PAUSE_AFTER_FAILURES,
  pauseSignal,
  progressQuery,
  type ReindexCollectionInput,
  resultsBacklogSignal,
  resumeSignal,
  type RunPhase,
  type RunProgress,
  type RunSummary,
  streakAtEndSignal,
  streakVerdictSignal,
} from '../shared';
import { reindexBatch } from './reindex-batch';
import {
  addTotals,
  countDuplicates,
  currentDetailsOf,
  emptyTotals,
  initialState,
  progressOf,
  searchAttributesOf,
  summaryOf,
} from './run-state';
import { SENDING, SHORT_CALL, WALKING } from './activity-options';
import { steerChildren, tellEach } from './steering';

const { prepareTarget, writeReport, deleteDuplicateFaces, settleDuplicates } =
  proxyActivities<ControlActivities>(SHORT_CALL);

const { splitManifest, drainResults, drainContinuously, migrateUsers, reconcile, countResultsInDlq, tagRunEnded } =
  proxyActivities<ControlActivities>({
    ...WALKING,
    // Cancelled, the split still answers with what it split.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });

/** As the batches send to review. */
const { sendToReview, reviewFailedBatch } = proxyActivities<ControlActivities>(SENDING);

/** Failures of a batch that no other batch can escape either: they fail the run. */
const RUN_FAILURES = new Set<string>([
  ReasonCode.TargetCollectionNotFound,
  ReasonCode.TargetCollectionFull,
  ReasonCode.SourceCollectionNotFound,
]);

/** The ApplicationFailure at the root of a child's failure, where the reason and the message that matter are. */
function rootFailure(error: unknown): { type: string | undefined; message: string } {
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  return {
    type: cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined,
    message: cause instanceof Error ? cause.message : String(cause),
  };
}

/** Messages drained after each batch, so the results queue never holds a whole run. */
const DRAIN_AFTER_EACH_BATCH = 2_000;
/**
 * Runs that record this patch drain beside their batches: a finished batch starts a drain if none
 * runs, and the next batch starts at once. Before it, the run drained before starting the next
 * batch, and on a slow store (moto) IndexFaces idled for minutes while rows were written.
 */
const DRAIN_BESIDE_BATCHES = 'drain-beside-batches';
/**
 * Runs that record this patch stop their split when cancelled; before it, a cancelled run waited for the whole file.
 */
const CANCEL_THE_SPLIT = 'cancel-the-split';
/**
 * Runs that record this patch drain all the time: beside the batches, paused or not, one window of
 * minutes after another, settling duplicates inside the activity. Before it, a drain of at most
 * 2,000 messages started only when a batch ended, and none while paused.
 */
const DRAIN_CONTINUOUSLY = 'drain-continuously';
/**
 * Runs that record this patch hold back new images while rows wait too long in the results queue,
 * so the queue stays minutes deep whatever the drain's speed against the images'. Before it, a
 * drain slower than publishing let rows wait for hours.
 */
const HOLD_FOR_RESULTS = 'hold-for-results';
/** Runs that record this patch tag their objects in the bucket as ended, for its retention rule. */
const TAG_RUN_ENDED = 'tag-run-ended';
/** Runs that record this patch count their rows in the results DLQ for the summary. */
const COUNT_RESULTS_DLQ = 'count-results-dlq';
/**
 * Runs that record this patch end their final drain once the table holds every row their batches
 * sent (counted in the table's index of rows by run), not only once the results queue is empty:
 * other runs share that queue and may keep it busy for hours. Their drain windows beside the
 * batches are short, so the run's end waits little for the window in progress.
 */
const END_ON_OWN_ROWS = 'end-on-own-rows';
/** How long one drain activity drains at most before it answers; it answers sooner when the queue is empty. */
export const DRAIN_WINDOW_MS = 5 * 60_000;
/** A drain window beside the batches of a run that records END_ON_OWN_ROWS. */
const WINDOW_BESIDE_BATCHES_MS = 30_000;
/**
 * After a drain found the queue empty, the next starts this long after, doubling while it stays
 * empty up to the most: a row waits at most a minute for a drain to begin, and an idle run adds
 * few events to its history. Workflow timers, so a time-skipping test skips them.
 */
const DRAIN_IDLE_MIN_MS = 5_000;
const DRAIN_IDLE_MAX_MS = 60_000;
/** Empty drains of a paused run before it waits for resume: 5, 10, 20, 40 and 60 s, past an attempt's two minutes. */
const DRAIN_CHECKS_WHILE_PAUSED = 5;
/** How long the final drain waits before looking again at messages still in flight. */
const DRAIN_RECHECK = '5 seconds';

/** The drain running beside the batches of an execution. */
interface ContinuousDrain {
  /** Settles when the drain fails for good (or has been stopped). */
  failed: Promise<undefined>;
  failure(): Error | undefined;
  /** Lets the window in progress end and waits for its answer; throws the drain's failure. */
  stop(): Promise<void>;
}

/** How a batch ended: with its summary, or failed with an error. */
type BatchEnd =
  { batch: number; summary: BatchSummary; error?: undefined } | { batch: number; summary?: undefined; error: unknown };

/** Migrates every face of a records file into the target collection. */
export async function reindexCollection(input: ReindexCollectionInput): Promise<RunSummary> {
  // Checked once, at the start: a continued execution carries settings that were checked.
  const problems = input.carried === undefined ? runSettingsProblems(input) : [];
  if (problems.length > 0)
    throw ApplicationFailure.create({
      type: ReasonCode.InvalidRunInput,
      message: `the run's input is not valid: ${problems.join('; ')}`,
      nonRetryable: true,
    });
  const runId = workflowInfo().workflowId;
  const state = input.carried ?? initialState(Date.now());
  /** Each running batch, and how it ends: with its summary, or with the error it failed with. */
  const running = new Map<number, { handle: ChildWorkflowHandle<typeof reindexBatch>; ended: Promise<BatchEnd> }>();
  let stopping = false;
  let resolveStop: () => void = () => undefined;
  const stopRequested = new Promise<void>((resolve) => {
    resolveStop = resolve;
  });

  const progress = (): RunProgress =>
    progressOf(state, {
      nowMs: Date.now(),
      stopping,
      batchesRunning: running.size,
      targetCollectionId: input.targetCollectionId,
    });

  /** Search attributes for finding runs in the UI, and a line of current details for reading one. */
  const publishState = () => {
    upsertSearchAttributes([...searchAttributesOf(state)]);
    setCurrentDetails(currentDetailsOf(state, { stopping, batchesRunning: running.size }));
  };

  const enter = (phase: RunPhase) => {
    state.phase = phase;
    publishState();
  };

  const runningBatches = () => [...running.values()].map(({ handle }) => handle);

  /** Holds back or lets go every batch's new images, as the drain's backlog asks. */
  const holdForResults = async (held: boolean) => {
    if (held === (state.heldForResults ?? false)) return;
    state.heldForResults = held;
    if (held) state.resultsHolds = (state.resultsHolds ?? 0) + 1;
    publishState();
    await tellEach(runningBatches(), resultsBacklogSignal, { held });
  };

  setHandler(progressQuery, progress);
  steerChildren({
    running: runningBatches,
    onPause: () => {
      state.paused = true;
      publishState();
    },
    onResume: () => {
      state.paused = false;
      delete state.pausedBy;
      delete state.runStreak;
      publishState();
    },
    onCancelRequested: () => {
      stopping = true;
      resolveStop();
    },
  });
  /** Pauses every batch because the circuit breaker tripped. */
  const tripBreaker = async (trip: BreakerTrip) => {
    if (state.paused) return;
    state.paused = true;
    state.pausedBy = trip;
    publishState();
    await tellEach(runningBatches(), pauseSignal);
  };
  setHandler(breakerTrippedSignal, tripBreaker);
  // Failures that batches end with add up across them: batches smaller than the breaker's count
  // would never trip it alone. A batch that ends well starts the count again (see runBatches).
  setHandler(streakAtEndSignal, async ({ batch, reason, images, firstError }) => {
    const streak = state.runStreak?.reason === reason ? state.runStreak : { reason, images: 0, firstError };
    streak.images += images;
    const pauseAfterFailures = input.pauseAfterFailures ?? DEFAULT_PAUSE_AFTER_FAILURES;
    const trip = pauseAfterFailures > 0 && streak.images >= pauseAfterFailures;
    if (trip) delete state.runStreak;
    else state.runStreak = streak;
    await running.get(batch)?.handle.signal(streakVerdictSignal, { trip });
    if (trip) await tripBreaker({ reason, images: streak.images, batch, firstError: streak.firstError });
  });

  const startBatch = async (
    batch: number,
    split: NonNullable<CarriedState['split']>,
    target: NonNullable<CarriedState['target']>,
  ) => {
    const startedPaused = state.paused;
    const startedHeld = state.heldForResults ?? false;
    const handle = await startChild(reindexBatch, {
      workflowId: `${runId}/batch-${batch}`,
      staticSummary: `batch ${batch + 1} of ${split.chunks}`,
      args: [
        {
          runId,
          batch,
          chunkKey: chunkKey(runId, batch),
          targetCollectionId: target.collectionId,
          sourceCollectionId: input.sourceCollectionId,
          ...(input.sourceRegion === undefined ? {} : { sourceRegion: input.sourceRegion }),
          options: input.options,
          imagesInFlight: input.imagesInFlightPerBatch,
          paused: startedPaused,
          ...(startedHeld ? { heldBack: true } : {}),
          ...(input.retryMinutes === undefined ? {} : { retryMinutes: input.retryMinutes }),
          ...(input.pauseAfterFailures === undefined ? {} : { pauseAfterFailures: input.pauseAfterFailures }),
        },
      ],
    });
    const ended = handle.result().then(
      (summary): BatchEnd => ({ batch, summary }),
      (error: unknown): BatchEnd => ({ batch, error }),
    );
    running.set(batch, { handle, ended });
    // A pause or resume that came while the child was starting did not reach it.
    if (state.paused !== startedPaused) await handle.signal(state.paused ? pauseSignal : resumeSignal);
    if ((state.heldForResults ?? false) !== startedHeld)
      await handle.signal(resultsBacklogSignal, { held: !startedHeld });
  };

  /**
   * A batch that failed for a reason of its own (its chunk unreadable, its outcomes not sent after
   * every retry) costs its images, sent to review, not the run; one that no batch can escape fails it.
   */
  const accountFailedBatch = async (batch: number, error: unknown): Promise<BatchTotals> => {
    const root = rootFailure(error);
    if (root.type !== undefined && RUN_FAILURES.has(root.type)) throw error;
    const accounted = await reviewFailedBatch({
      runId,
      chunkKey: chunkKey(runId, batch),
      detail: `batch ${batch + 1} failed: ${root.message}`,
    });
    return {
      ...emptyTotals(),
      images: accounted.images,
      faces: accounted.faces,
      dlqByReason: { [ReasonCode.BatchFailed]: accounted.messages },
    };
  };

  /**
   * Drains, then settles the duplicates the drain refused: new faces deleted, one review-DLQ message
   * each, messages deleted. Other runs share the queue, and this drain settles their duplicates
   * too, but only this run's change its totals.
   */
  const drain = async (maxMessages: number): Promise<{ queueEmpty: boolean; refused: number }> => {
    const drained = await drainResults(maxMessages);
    state.resultsWritten += drained.written;
    const duplicates = drained.duplicates ?? [];
    if (duplicates.length > 0) {
      await Promise.all([
        deleteDuplicateFaces(duplicates),
        sendToReview(duplicates.map((duplicate) => duplicate.review)),
      ]);
      await settleDuplicates(duplicates);
      const ours = duplicates.filter((duplicate) => duplicate.row.RunId === runId).length;
      if (ours > 0) {
        countDuplicates(state, ours);
        publishState();
      }
    }
    return { queueEmpty: drained.queueEmpty, refused: duplicates.length };
  };

  /** What a continuous drain window did: rows written, and this run's duplicates now in review instead of matched. */
  const tally = ({ written, duplicatesOfRun, oldestAgeMs }: DrainedWindow) => {
    state.resultsWritten += written;
    state.resultsMaxWaitMs = Math.max(state.resultsMaxWaitMs ?? 0, oldestAgeMs);
    countDuplicates(state, duplicatesOfRun);
    publishState();
  };

  /**
   * Drains one window after another while this execution's batches run, paused or not. `stop` lets
   * the window in progress end by itself (it answers once the queue is empty), so no window is cut
   * off with rows written and not counted. A drain that fails for good fails the run. A window that
   * finds rows waiting too long holds back new images until a window finds the backlog gone.
   */
  const drainWhileIndexing = (windowMs: number): ContinuousDrain => {
    let over = false;
    let failure: Error | undefined;
    const holdsBack = patched(HOLD_FOR_RESULTS);
    if (holdsBack) state.resultsHolds ??= 0;
    const loop = (async () => {
      let idleMs = DRAIN_IDLE_MIN_MS;
      let emptyWhilePaused = 0;
      while (!over) {
        const held = state.heldForResults ?? false;
        const drained = await drainContinuously({
          runId,
          forMs: windowMs,
          untilEmpty: true,
          ...(holdsBack ? { heldBack: held } : {}),
        });
        tally(drained);
        if (holdsBack)
          await holdForResults(
            drained.backlog === 'behind' || (held && drained.backlog !== 'caughtUp' && !drained.queueEmpty),
          );
        if (!drained.queueEmpty) {
          idleMs = DRAIN_IDLE_MIN_MS;
          continue;
        }
        emptyWhilePaused = state.paused ? emptyWhilePaused + 1 : 0;
        // Paused, the last rows come within an attempt's time; after that nothing comes until resume.
        if (emptyWhilePaused >= DRAIN_CHECKS_WHILE_PAUSED) await condition(() => over || !state.paused);
        else await condition(() => over, idleMs);
        idleMs = Math.min(idleMs * 2, DRAIN_IDLE_MAX_MS);
      }
    })().catch((error: unknown) => {
      failure = error instanceof Error ? error : new Error(`the results drain failed: ${String(error)}`);
    });
    return {
      failed: loop.then(() => undefined),
      failure: () => failure,
      stop: async () => {
        over = true;
        await loop;
        if (failure !== undefined) throw failure;
      },
    };
  };

  /** Runs the batches of this execution; 'more' when batches are left for the next one. */
  const runBatches = async (
    split: NonNullable<CarriedState['split']>,
    target: NonNullable<CarriedState['target']>,
    continuous: ContinuousDrain | undefined,
  ) => {
    let next = state.batchesDone;
    let startedHere = 0;
    let childrenCancelled = false;
    const executionFull = () => startedHere >= input.batchesPerExecution || workflowInfo().continueAsNewSuggested;
    /**
     * The drain running beside the batches; raced with them, so its failure fails the run as an inline drain's would.
     */
    let besideBatches: Promise<undefined> | undefined;
    const drainBesideBatches = () => {
      const draining = drain(DRAIN_AFTER_EACH_BATCH).then(() => {
        besideBatches = undefined;
        return undefined;
      });
      // Raced or awaited later; until then a failure must not count as an unhandled rejection.
      draining.catch(() => undefined);
      besideBatches = draining;
    };
    for (;;) {
      const drainFailure = continuous?.failure();
      if (drainFailure !== undefined) throw drainFailure;
      while (
        !stopping &&
        !state.paused &&
        running.size < input.batchesInFlight &&
        next < split.chunks &&
        !executionFull()
      ) {
        await startBatch(next, split, target);
        next += 1;
        startedHere += 1;
        publishState();
      }
      if (running.size === 0) {
        if (besideBatches) await besideBatches;
        if (stopping || next >= split.chunks) return 'finished';
        if (executionFull()) return 'more';
        await condition(() => !state.paused || stopping || continuous?.failure() !== undefined);
        continue;
      }
      if (stopping && !childrenCancelled) {
        // Cancelled: every running batch stops starting images and reports what it did.
        childrenCancelled = true;
        await Promise.all(
          [...running.values()].map(({ handle }) =>
            getExternalWorkflowHandle(handle.workflowId)
              .cancel()
              .catch(() => undefined),
          ),
        );
      }
      const finished = await Promise.race([
        ...[...running.values()].map(({ ended }) => ended),
        ...(childrenCancelled ? [] : [stopRequested.then(() => undefined)]),
        ...(besideBatches ? [besideBatches] : []),
        ...(continuous ? [continuous.failed] : []),
      ]);
      if (finished === undefined) continue;
      running.delete(finished.batch);
      addTotals(state.totals, finished.summary ?? (await accountFailedBatch(finished.batch, finished.error)));
      // A batch that failed may have sent rows before it did: how many, nobody can tell.
      if (state.rowsSent !== undefined && finished.summary) state.rowsSent += finished.summary.matched;
      else delete state.rowsSent;
      if (!finished.summary?.endedFailing) delete state.runStreak;
      state.batchesDone += 1;
      publishState();
      if (continuous) continue;
      if (!patched(DRAIN_BESIDE_BATCHES)) await drain(DRAIN_AFTER_EACH_BATCH);
      else if (!besideBatches) drainBesideBatches();
    }
  };

  /**
   * Splits the records file; a cancellation stops the split where it is, and the records split
   * so far count as not processed. The split answers with what it did even when cancelled.
   */
  const split = async (): Promise<CarriedState['split']> => {
    const splitting = new CancellationScope();
    void stopRequested.then(() => {
      if (patched(CANCEL_THE_SPLIT)) splitting.cancel();
    });
    const splitInput = {
      runId,
      manifest: input.manifest,
      chunkSize: input.batchSize,
      ...(input.manifestETag === undefined ? {} : { manifestETag: input.manifestETag }),
      ...(input.records === undefined ? {} : { selection: input.records }),
    };
    try {
      return await splitting.run(() => splitManifest(splitInput));
    } catch (error) {
      // Cancelled before it began: nothing was split.
      if (stopping && isCancellation(error)) return undefined;
      throw error;
    }
  };

  // Cancellation only sets `stopping`: every phase after it must still run to leave the run consistent.
  return CancellationScope.nonCancellable(async () => {
    const drainsContinuously = patched(DRAIN_CONTINUOUSLY);
    const endsOnOwnRows = patched(END_ON_OWN_ROWS);
    if (state.phase === 'preparing') {
      // Counted from the start, or not at all: a run that began before the count cannot end on it.
      if (endsOnOwnRows) state.rowsSent = 0;
      publishState();
      const prepared = await prepareTarget({
        runId,
        targetCollectionId: input.targetCollectionId,
        sourceCollectionId: input.sourceCollectionId,
        ...(input.sourceRegion === undefined ? {} : { sourceRegion: input.sourceRegion }),
        force: input.force,
      });
      state.target = {
        collectionId: input.targetCollectionId,
        faceModelVersion: prepared.targetFaceModelVersion,
        sourceFaceModelVersion: prepared.sourceFaceModelVersion,
        created: prepared.created,
      };
      enter('splitting');
    }
    if (state.phase === 'splitting') {
      if (!stopping) state.split = await split();
      state.indexingStartedAtMs = Date.now();
      enter('indexing');
    }
    if (state.phase === 'indexing') {
      const continuous = drainsContinuously
        ? drainWhileIndexing(endsOnOwnRows ? WINDOW_BESIDE_BATCHES_MS : DRAIN_WINDOW_MS)
        : undefined;
      const batches =
        state.split && state.target ? await runBatches(state.split, state.target, continuous) : 'finished';
      await continuous?.stop();
      if (batches === 'more') {
        // Signal handlers may still be telling children; they must finish before this execution ends.
        await condition(() => running.size === 0 && allHandlersFinished());
        // A cancellation that came after the last batch finished ends the run here instead.
        if (!stopping) return continueAsNew<typeof reindexCollection>({ ...input, carried: state });
      }
      // No image is left to hold back.
      delete state.heldForResults;
      enter('draining');
    }
    if (state.phase === 'draining' && drainsContinuously) {
      for (;;) {
        const drained = await drainContinuously({
          runId,
          forMs: DRAIN_WINDOW_MS,
          untilEmpty: true,
          ...(state.rowsSent === undefined
            ? {}
            : { accountFor: { rowsSent: state.rowsSent, since: new Date(state.startedAtMs).toISOString() } }),
        });
        tally(drained);
        if (drained.queueEmpty || drained.runAccounted) break;
        if (workflowInfo().continueAsNewSuggested) {
          await condition(allHandlersFinished);
          return continueAsNew<typeof reindexCollection>({ ...input, carried: state });
        }
      }
      enter('users');
    }
    if (state.phase === 'draining') {
      for (;;) {
        const drained = await drain(Number.MAX_SAFE_INTEGER);
        if (drained.queueEmpty) break;
        // A drain that stopped to settle duplicates goes on at once; one that found messages in flight waits for them.
        if (drained.refused === 0) await sleep(DRAIN_RECHECK);
      }
      enter('users');
    }
    let usersCreated = 0;
    let facesAssociated = 0;
    if (state.phase === 'users') {
      const users = await migrateUsers({ runId, targetCollectionId: input.targetCollectionId });
      usersCreated = users.usersCreated;
      facesAssociated = users.facesAssociated;
      // The drains count what they wrote, but a worker killed before its heartbeat loses some of it.
      if (users.rowsOfRun !== undefined) state.resultsWritten = users.rowsOfRun;
      // Another run's drain may have settled some of this run's duplicates; the table has them all.
      if (users.duplicatesOfRun !== undefined)
        countDuplicates(state, users.duplicatesOfRun - (state.totals.dlqByReason[ReasonCode.DuplicateFaceId] ?? 0));
      addTotals(state.totals, { ...emptyTotals(), dlqByReason: users.refusedByReason });
      enter('reconciling');
    }
    const reconciled = await reconcile(input.targetCollectionId);
    // After the last drain: what SQS moved to the results DLQ by then stays there.
    const resultsInDlq = patched(COUNT_RESULTS_DLQ) ? await countResultsInDlq(runId) : undefined;
    enter('reporting');
    const summary = summaryOf(state, input, {
      runId,
      stopping,
      usersCreated,
      facesAssociated,
      reconciled,
      resultsInDlq,
      nowMs: Date.now(),
    });
    const report = await writeReport(summary);
    // Chunks, the redrive file and the report expire from the bucket only once tagged: never while the run reads them.
    if (patched(TAG_RUN_ENDED)) await tagRunEnded(runId);
    enter('done');
    if (stopping) throw new CancelledFailure('the run was cancelled; its report is at ' + report.json);
    return { ...summary, report };
  });
}
