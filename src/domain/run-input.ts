/**
 * The settings a run starts with, checked before it does anything: a run with no batch or no
 * image in flight would never end (a parent spinning on zero batches, a batch waiting for a free
 * slot that never comes), and a threshold outside IoU's range would match nothing or everything.
 * The CLI checks its flags too; this guards every other way a run is started.
 */
import type { ReindexCollectionInput } from '../shared';
import { isCollectionId } from './collection-names';

export type RunSettings = Pick<
  ReindexCollectionInput,
  | 'targetCollectionId'
  | 'options'
  | 'batchSize'
  | 'batchesInFlight'
  | 'imagesInFlightPerBatch'
  | 'batchesPerExecution'
  | 'retryMinutes'
  | 'pauseAfterFailures'
>;

const wholeFrom = (least: number) => (value: number | undefined) =>
  value !== undefined && Number.isInteger(value) && value >= least;

/** What is wrong with the settings, one phrase each; none when the run can go. */
export function runSettingsProblems(settings: RunSettings): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, problem: string) => {
    if (!ok) problems.push(problem);
  };
  expect(
    isCollectionId(settings.targetCollectionId),
    `the target ${JSON.stringify(settings.targetCollectionId)} is not a collection name`,
  );
  expect(wholeFrom(1)(settings.batchSize), `batchSize must be a whole number from 1, not ${settings.batchSize}`);
  expect(
    wholeFrom(1)(settings.batchesInFlight),
    `batchesInFlight must be a whole number from 1, not ${settings.batchesInFlight}`,
  );
  expect(
    wholeFrom(1)(settings.imagesInFlightPerBatch),
    `imagesInFlightPerBatch must be a whole number from 1, not ${settings.imagesInFlightPerBatch}`,
  );
  expect(
    wholeFrom(1)(settings.batchesPerExecution),
    `batchesPerExecution must be a whole number from 1, not ${settings.batchesPerExecution}`,
  );
  const { iouThreshold, maxFaces, rowsExpireDays } = settings.options;
  expect(
    iouThreshold > 0 && iouThreshold <= 1,
    `options.iouThreshold must be above 0 and at most 1, not ${iouThreshold}`,
  );
  expect(
    maxFaces === undefined || wholeFrom(1)(maxFaces),
    `options.maxFaces must be a whole number from 1, not ${maxFaces}`,
  );
  expect(
    rowsExpireDays === undefined || rowsExpireDays > 0,
    `options.rowsExpireDays must be more than 0, not ${rowsExpireDays}`,
  );
  expect(
    settings.retryMinutes === undefined || settings.retryMinutes >= 0,
    `retryMinutes must be 0 or more, not ${settings.retryMinutes}`,
  );
  expect(
    settings.pauseAfterFailures === undefined || wholeFrom(0)(settings.pauseAfterFailures),
    `pauseAfterFailures must be a whole number from 0, not ${settings.pauseAfterFailures}`,
  );
  return problems;
}
