/**
 * The run's carried state and what is read from it, without a Temporal server: totals, progress
 * and ETA, the UI's details and the summary.
 */
import { ReasonCode } from '../../src/domain/reasons';
import type { CarriedState } from '../../src/shared';
import {
  addTotals,
  countDuplicates,
  currentDetailsOf,
  dlqByReasonOf,
  emptyTotals,
  initialState,
  progressOf,
  summaryOf,
} from '../../src/workflows/run-state';

/** A run 10 s into indexing with 150 valid records, 3 refused by the split, 2 batches of 3 done. */
function midRun(): CarriedState {
  const state = initialState(1_000);
  state.phase = 'indexing';
  state.indexingStartedAtMs = 2_000;
  state.target = { collectionId: 'faces-v7', faceModelVersion: '7.0', sourceFaceModelVersion: '6.0', created: true };
  state.split = {
    chunkPrefix: 'runs/r/chunks/',
    chunks: 3,
    validRecords: 150,
    invalidRecords: 3,
    refusedByReason: { [ReasonCode.InvalidRecord]: 3 },
    faces: 180,
    truncated: false,
  };
  state.batchesDone = 2;
  addTotals(state.totals, {
    ...emptyTotals(),
    images: 40,
    faces: 48,
    matched: 45,
    unmatchedOld: 3,
    dlqByReason: { [ReasonCode.IouBelowThreshold]: 3 },
  });
  addTotals(state.totals, { ...emptyTotals(), images: 10, faces: 12, matched: 12, notProcessed: 0, dlqByReason: {} });
  return state;
}

test('finished batches add up, and the DLQ counts the split refusals beside them', () => {
  const state = midRun();

  expect(state.totals).toMatchObject({ images: 50, faces: 60, matched: 57, unmatchedOld: 3 });
  expect(dlqByReasonOf(state)).toEqual({ [ReasonCode.IouBelowThreshold]: 3, [ReasonCode.InvalidRecord]: 3 });
});

test('progress gives the rate since indexing began and the time left at it', () => {
  const progress = progressOf(midRun(), {
    nowMs: 12_000,
    stopping: false,
    batchesRunning: 1,
    targetCollectionId: 'faces-v7',
  });

  expect(progress).toMatchObject({
    phase: 'indexing',
    imagesTotal: 150,
    imagesPerSecond: 5,
    etaSeconds: 20,
    dlq: 6,
    elapsedMs: 11_000,
    batches: { total: 3, done: 2, running: 1 },
  });
  expect(
    progressOf(initialState(0), { nowMs: 5_000, stopping: false, batchesRunning: 0, targetCollectionId: 't' }),
  ).toMatchObject({ imagesPerSecond: 0, etaSeconds: undefined, imagesTotal: undefined });
});

test("a drain's duplicates of the run leave matched for the DLQ", () => {
  const state = midRun();

  countDuplicates(state, 2);
  countDuplicates(state, 0);

  expect(state.totals.matched).toBe(55);
  expect(dlqByReasonOf(state)[ReasonCode.DuplicateFaceId]).toBe(2);
});

test('the details say the phase, why the run waits, and how far it got', () => {
  const state = midRun();
  state.paused = true;
  state.pausedBy = { reason: ReasonCode.AccessDenied, images: 20, batch: 1, firstError: 'AccessDenied' };

  expect(currentDetailsOf(state, { stopping: true, batchesRunning: 1 }).split('\n\n')).toEqual([
    '**indexing** (paused) (stopping)',
    '**paused itself**: 20 images in a row of batch 2 failed with ACCESS_DENIED; the first: AccessDenied',
    'images 50 of 150, faces matched 57, in the DLQ 6',
    'batches done 2 of 3, running 1',
  ]);
});

test('a cancelled run counts what it never reached as not processed, and its duration from its start', () => {
  const summary = summaryOf(
    midRun(),
    {
      targetCollectionId: 'faces-v7',
      sourceCollectionId: 'faces-v6',
      options: { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' },
    },
    {
      runId: 'r',
      stopping: true,
      usersCreated: 4,
      facesAssociated: 9,
      reconciled: { orphansDeleted: 1 },
      resultsInDlq: undefined,
      nowMs: 61_000,
    },
  );

  expect(summary).toMatchObject({
    workflowId: 'r',
    status: 'cancelled',
    images: 50,
    notProcessed: 100,
    dlq: 6,
    invalidRecords: 3,
    unattributedKept: 0,
    faceModelVersion: '7.0',
    durationMs: 60_000,
  });
  expect(summary).not.toHaveProperty('resultsInDlq');
});
