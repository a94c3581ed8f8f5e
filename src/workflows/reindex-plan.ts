/**
 * reindexPlan: many collections in one run. Each collection of the plan is migrated by a
 * reindexCollection child of its own (`<plan>/<target>`), a bounded number at once and the smallest
 * first; all of them call IndexFaces on the one rate-limited queue, where their images take turns
 * by target (the fairness key), so a small collection never waits behind a large one.
 *
 * Pause stops starting collections and pauses the running ones; resume resumes them and goes on.
 * Cancelling stops starting collections and cancels the running ones, each of which ends as a
 * cancelled run does (drained, reconciled, reported). A collection whose run fails is recorded with
 * its error, and the others go on.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { ReasonCode } from '../domain/reasons';
import { runSettingsProblems } from '../domain/run-input';
import {
  type PlannedRun,
  type PlannedRunState,
  type PlanSummary,
  pauseSignal,
  planProgressQuery,
  type ReindexPlanInput,
  startingSearchAttributes,
} from '../shared';
import { reindexCollection } from './reindex-collection';
import { steerChildren } from './steering';

function invalidPlan(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ReasonCode.InvalidPlan, message, nonRetryable: true });
}

function checkPlan({ collections, collectionsInFlight, settings }: ReindexPlanInput): void {
  if (collections.length === 0) throw invalidPlan('the plan names no collection');
  if (!Number.isInteger(collectionsInFlight) || collectionsInFlight < 1)
    throw invalidPlan(`collectionsInFlight must be a whole number from 1, not ${collectionsInFlight}`);
  const targets = new Set<string>();
  for (const { targetCollectionId, records } of collections) {
    if (targets.has(targetCollectionId)) throw invalidPlan(`the plan names the target ${targetCollectionId} twice`);
    targets.add(targetCollectionId);
    // A run takes the records naming its own target: any other would migrate one collection's faces into another.
    if (records && records.collectionId !== targetCollectionId)
      throw invalidPlan(`the run into ${targetCollectionId} would take the records of ${records.collectionId}`);
  }
  if (collections.filter(({ records }) => records?.refusesUnnamed).length > 1)
    throw invalidPlan('more than one run would refuse the records that name no collection');
  // Said once for the plan, not by every collection's run failing alike.
  const problems = runSettingsProblems({ ...settings, targetCollectionId: collections[0]?.targetCollectionId ?? '' });
  if (problems.length > 0) throw invalidPlan(`the plan's settings are not valid: ${problems.join('; ')}`);
}

/** Smallest first, those of unknown size last, otherwise in the plan's order (the sort is stable). */
function inStartingOrder<T extends { collection: PlannedRun }>(entries: T[]): T[] {
  return [...entries].sort(
    (a, b) => (a.collection.images ?? Number.MAX_SAFE_INTEGER) - (b.collection.images ?? Number.MAX_SAFE_INTEGER),
  );
}

function totalsOf(states: PlannedRunState[]): PlanSummary['totals'] {
  const sum = (figure: keyof PlanSummary['totals']) =>
    states.reduce((total, { summary }) => total + (summary?.[figure] ?? 0), 0);
  return {
    images: sum('images'),
    faces: sum('faces'),
    matched: sum('matched'),
    unmatchedOld: sum('unmatchedOld'),
    dlq: sum('dlq'),
    resultsWritten: sum('resultsWritten'),
    usersCreated: sum('usersCreated'),
    facesAssociated: sum('facesAssociated'),
  };
}

export async function reindexPlan(input: ReindexPlanInput): Promise<PlanSummary> {
  checkPlan(input);
  const planId = workflowInfo().workflowId;
  const startedAtMs = Date.now();
  const states: PlannedRunState[] = input.collections.map(({ targetCollectionId }) => ({
    targetCollectionId,
    workflowId: `${planId}/${targetCollectionId}`,
    state: 'waiting',
  }));
  let paused = false;
  let stopping = false;
  let running = 0;

  setHandler(planProgressQuery, () => ({ paused, stopping, collections: states }));
  // Cancelling the plan cancels the collections' runs, which were started in its scope.
  steerChildren({
    running: () =>
      states.filter((state) => state.state === 'running').map((state) => getExternalWorkflowHandle(state.workflowId)),
    onPause: () => (paused = true),
    onResume: () => (paused = false),
    onCancelRequested: () => (stopping = true),
  });

  const runCollection = async (collection: PlannedRun, state: PlannedRunState) => {
    const handle = await startChild(reindexCollection, {
      workflowId: state.workflowId,
      staticSummary: `s3://${collection.manifest.Bucket}/${collection.manifest.Key} → ${collection.targetCollectionId}`,
      typedSearchAttributes: startingSearchAttributes(collection.targetCollectionId),
      args: [
        {
          ...input.settings,
          manifest: collection.manifest,
          ...(collection.manifestETag === undefined ? {} : { manifestETag: collection.manifestETag }),
          targetCollectionId: collection.targetCollectionId,
          sourceCollectionId: collection.sourceCollectionId,
          ...(collection.records === undefined ? {} : { records: collection.records }),
        },
      ],
    });
    state.state = 'running';
    // Started while the plan was being paused: it pauses too.
    if (paused) await handle.signal(pauseSignal);
    try {
      state.summary = await handle.result();
      state.state = 'completed';
    } catch (error) {
      const cancelled = isCancellation(error);
      state.state = cancelled ? 'cancelled' : 'failed';
      state.error =
        error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    }
  };

  const ended: Promise<void>[] = [];
  try {
    for (const { collection, state } of inStartingOrder(
      input.collections.map((collection, i) => ({ collection, state: states[i] as PlannedRunState })),
    )) {
      await condition(() => running < input.collectionsInFlight && !paused);
      running += 1;
      ended.push(runCollection(collection, state).finally(() => (running -= 1)));
    }
  } catch (error) {
    if (!isCancellation(error)) throw error;
  }
  // The running collections end as cancelled runs end: drained, reconciled, reported.
  await CancellationScope.nonCancellable(() => Promise.all(ended));
  for (const state of states) if (state.state === 'waiting') state.state = 'cancelled';
  return {
    workflowId: planId,
    status: stopping ? 'cancelled' : 'completed',
    collections: states,
    totals: totalsOf(states),
    durationMs: Date.now() - startedAtMs,
  };
}
