import { runSettingsProblems, type RunSettings } from '../../src/domain/run-input';

const valid: RunSettings = {
  targetCollectionId: 'faces-v7',
  options: { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' },
  batchSize: 500,
  batchesInFlight: 4,
  imagesInFlightPerBatch: 16,
  batchesPerExecution: 500,
};

test('the settings start already checks pass', () => {
  expect(runSettingsProblems(valid)).toEqual([]);
  expect(
    runSettingsProblems({
      ...valid,
      options: { ...valid.options, iouThreshold: 1, maxFaces: 100, rowsExpireDays: 0.5 },
      retryMinutes: 0,
      pauseAfterFailures: 0,
    }),
  ).toEqual([]);
});

test('settings that would keep a run from ending, or out of range, are each named', () => {
  expect(
    runSettingsProblems({
      targetCollectionId: 'faces v7',
      options: { ...valid.options, iouThreshold: 1.5, maxFaces: 0, rowsExpireDays: 0 },
      batchSize: 0,
      batchesInFlight: 0,
      imagesInFlightPerBatch: 1.5,
      batchesPerExecution: -1,
      retryMinutes: -1,
      pauseAfterFailures: -2,
    }),
  ).toEqual([
    'the target "faces v7" is not a collection name',
    'batchSize must be a whole number from 1, not 0',
    'batchesInFlight must be a whole number from 1, not 0',
    'imagesInFlightPerBatch must be a whole number from 1, not 1.5',
    'batchesPerExecution must be a whole number from 1, not -1',
    'options.iouThreshold must be above 0 and at most 1, not 1.5',
    'options.maxFaces must be a whole number from 1, not 0',
    'options.rowsExpireDays must be more than 0, not 0',
    'retryMinutes must be 0 or more, not -1',
    'pauseAfterFailures must be a whole number from 0, not -2',
  ]);
});
