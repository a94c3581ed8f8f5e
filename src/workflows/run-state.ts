/**
 * The state a run carries across continue-as-new, and what is read from it: totals, progress and
 * ETA, the search attributes and details the UI shows, and the summary. Pure functions of the
 * state and the moment, so they are unit tested without a Temporal server; reindexCollection
 * holds the state and calls them.
 */
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import {
  type BatchTotals,
  type CarriedState,
  type ReindexCollectionInput,
  type RunProgress,
  type RunSummary,
  SEARCH_ATTRIBUTES,
} from '../shared';

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

export function initialState(nowMs: number): CarriedState {
  return {
    phase: 'preparing',
    paused: false,
    startedAtMs: nowMs,
    indexingStartedAtMs: undefined,
    target: undefined,
    split: undefined,
    batchesDone: 0,
    totals: emptyTotals(),
    resultsWritten: 0,
  };
}

/** Adds a finished batch's figures (or any other tally) to the run's. */
export function addTotals(totals: BatchTotals, batch: BatchTotals): void {
  for (const key of [
    'images',
    'faces',
    'matched',
    'unmatchedOld',
    'unmatchedNewDeleted',
    'unmatchedNewKept',
    'reusedIndexings',
    'notProcessed',
  ] as const) {
    totals[key] += batch[key];
  }
  addReasonCounts(totals.dlqByReason, batch.dlqByReason);
}

/** Faces the drain refused as second rows of an old face of this run: in review, no longer matched. */
export function countDuplicates(state: CarriedState, duplicates: number): void {
  if (duplicates <= 0) return;
  state.totals.matched -= duplicates;
  addReasonCounts(state.totals.dlqByReason, { [ReasonCode.DuplicateFaceId]: duplicates });
}

/** Every DLQ message of the run by reason: the batches' and the records the split refused. */
export function dlqByReasonOf(state: CarriedState): ReasonCounts {
  const merged = { ...state.totals.dlqByReason };
  addReasonCounts(merged, state.split?.refusedByReason ?? {});
  return merged;
}

export function dlqCountOf(state: CarriedState): number {
  return Object.values(dlqByReasonOf(state)).reduce((sum, count) => sum + count, 0);
}

/** What the run is doing at `nowMs`: the progress query's answer, with the rate and the ETA. */
export function progressOf(
  state: CarriedState,
  {
    nowMs,
    stopping,
    batchesRunning,
    targetCollectionId,
  }: { nowMs: number; stopping: boolean; batchesRunning: number; targetCollectionId: string },
): RunProgress {
  const indexingMs = state.indexingStartedAtMs === undefined ? 0 : nowMs - state.indexingStartedAtMs;
  const imagesPerSecond = indexingMs > 0 ? state.totals.images / (indexingMs / 1000) : 0;
  const imagesTotal = state.split?.validRecords;
  const remaining =
    imagesTotal === undefined ? undefined : imagesTotal - state.totals.images - state.totals.notProcessed;
  return {
    phase: state.phase,
    paused: state.paused,
    ...(state.pausedBy ? { pausedBy: state.pausedBy } : {}),
    stopping,
    targetCollectionId,
    targetFaceModelVersion: state.target?.faceModelVersion,
    records: state.split && {
      valid: state.split.validRecords,
      invalid: state.split.invalidRecords,
      truncated: state.split.truncated,
    },
    batches: { total: state.split?.chunks ?? 0, done: state.batchesDone, running: batchesRunning },
    imagesTotal,
    totals: state.totals,
    dlq: dlqCountOf(state),
    dlqByReason: dlqByReasonOf(state),
    resultsWritten: state.resultsWritten,
    resultsMaxWaitMs: state.resultsMaxWaitMs,
    heldForResults: state.heldForResults ?? false,
    resultsHolds: state.resultsHolds ?? 0,
    imagesPerSecond,
    etaSeconds: remaining !== undefined && imagesPerSecond > 0 ? Math.ceil(remaining / imagesPerSecond) : undefined,
    elapsedMs: nowMs - state.startedAtMs,
  };
}

/** The search attributes runs are found by in the UI. */
export function searchAttributesOf(state: CarriedState) {
  return [
    { key: SEARCH_ATTRIBUTES.phase, value: state.phase },
    { key: SEARCH_ATTRIBUTES.processed, value: state.totals.images },
    { key: SEARCH_ATTRIBUTES.failed, value: dlqCountOf(state) },
    { key: SEARCH_ATTRIBUTES.paused, value: state.paused },
  ] as const;
}

/** The run's current details, as the UI shows them on its page (Markdown). */
export function currentDetailsOf(
  state: CarriedState,
  { stopping, batchesRunning }: { stopping: boolean; batchesRunning: number },
): string {
  const total = state.split?.validRecords;
  const trip = state.pausedBy;
  return [
    `**${state.phase}**${state.paused ? ' (paused)' : ''}${stopping ? ' (stopping)' : ''}`,
    ...(trip
      ? [
          `**paused itself**: ${trip.images} images in a row of batch ${trip.batch + 1} failed with ${trip.reason}; the first: ${trip.firstError}`,
        ]
      : []),
    ...(state.heldForResults
      ? [
          `**holding back new images**: result rows waited up to ${Math.round((state.resultsMaxWaitMs ?? 0) / 1000)} s in the results queue; the drain is catching up`,
        ]
      : []),
    `images ${state.totals.images}${total === undefined ? '' : ` of ${total}`}, faces matched ${state.totals.matched}, in the DLQ ${dlqCountOf(state)}`,
    `batches done ${state.batchesDone}${state.split ? ` of ${state.split.chunks}` : ''}, running ${batchesRunning}`,
  ].join('\n\n');
}

/** What the run's last phases found, for its summary. */
export interface RunEnding {
  runId: string;
  stopping: boolean;
  usersCreated: number;
  facesAssociated: number;
  reconciled: { orphansDeleted: number; unattributedKept?: number };
  resultsInDlq: number | undefined;
  nowMs: number;
}

/** The run's summary, before its report is written. */
export function summaryOf(
  state: CarriedState,
  input: Pick<ReindexCollectionInput, 'targetCollectionId' | 'sourceCollectionId' | 'options'>,
  ending: RunEnding,
): Omit<RunSummary, 'report'> {
  const { totals } = state;
  return {
    workflowId: ending.runId,
    status: ending.stopping ? 'cancelled' : 'completed',
    images: totals.images,
    faces: totals.faces,
    matched: totals.matched,
    unmatchedOld: totals.unmatchedOld,
    unmatchedNewDeleted: totals.unmatchedNewDeleted,
    unmatchedNewKept: totals.unmatchedNewKept,
    // Records of batches a cancellation kept from starting count as well as those a batch left.
    notProcessed: (state.split?.validRecords ?? 0) - totals.images,
    dlq: dlqCountOf(state),
    dlqByReason: dlqByReasonOf(state),
    invalidRecords: state.split?.invalidRecords ?? 0,
    resultsWritten: state.resultsWritten,
    ...(ending.resultsInDlq === undefined ? {} : { resultsInDlq: ending.resultsInDlq }),
    ...(state.resultsMaxWaitMs === undefined ? {} : { resultsMaxWaitMs: state.resultsMaxWaitMs }),
    ...(state.resultsHolds === undefined ? {} : { resultsHolds: state.resultsHolds }),
    usersCreated: ending.usersCreated,
    facesAssociated: ending.facesAssociated,
    orphansDeleted: ending.reconciled.orphansDeleted,
    // A reconcile recorded before it counted them reports none.
    unattributedKept: ending.reconciled.unattributedKept ?? 0,
    targetCollectionId: input.targetCollectionId,
    sourceCollectionId: input.sourceCollectionId,
    faceModelVersion: state.target?.faceModelVersion ?? '',
    iouThreshold: input.options.iouThreshold,
    durationMs: ending.nowMs - state.startedAtMs,
  };
}
