import {
  isPersonsFace,
  isPersonsReviewItem,
  isPersonsRow,
  type Person,
  recordWithoutPerson,
} from '../../src/domain/forgetting';
import type { ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { runObjectOf } from '../../src/stores/run-objects';
import { chunkKey, redriveRecordsKey, reportKey } from '../../src/shared';

const box = { Left: 0.1, Top: 0.1, Width: 0.2, Height: 0.2 };
const byFace: Person = { oldFaceIds: new Set(['old-ana']), newFaceIds: new Set(['new-ana']), userId: undefined };
const byUser: Person = { oldFaceIds: new Set(), newFaceIds: new Set(), userId: 'ana' };

test("a face is the person's by its old FaceId anywhere, by its UserId only in a run into the target", () => {
  expect(isPersonsFace(byFace, { FaceId: 'old-ana' }, false)).toBe(true);
  expect(isPersonsFace(byFace, { FaceId: 'old-ben' }, true)).toBe(false);
  expect(isPersonsFace(byUser, { FaceId: 'old-x', UserId: 'ana' }, true)).toBe(true);
  // Another collection's user of the same name is someone else.
  expect(isPersonsFace(byUser, { FaceId: 'old-x', UserId: 'ana' }, false)).toBe(false);
  expect(isPersonsFace(byFace, { FaceId: 7 }, true)).toBe(false);
});

test("a record loses only the person's faces, and goes when it held only theirs", () => {
  const record = {
    Bucket: 'b',
    Key: 'k',
    Faces: [
      { FaceId: 'old-ana', BoundingBoxes: box },
      { FaceId: 'old-ben', BoundingBoxes: box },
    ],
  };
  expect(recordWithoutPerson(record, byFace, false)).toEqual({
    record: { ...record, Faces: [{ FaceId: 'old-ben', BoundingBoxes: box }] },
    removed: 1,
  });
  expect(recordWithoutPerson({ Faces: [{ FaceId: 'old-ana' }] }, byFace, false)).toEqual({
    record: undefined,
    removed: 1,
  });
  expect(recordWithoutPerson(record, { ...byFace, oldFaceIds: new Set(['nobody']) }, false)).toEqual({
    record,
    removed: 0,
  });
  expect(recordWithoutPerson('not a record', byFace, false)).toEqual({ record: 'not a record', removed: 0 });
});

test("a review message is the person's by its face, a refused record's face ids, or the users phase's record", () => {
  const item = (extra: Partial<ReviewItem>): ReviewItem => ({
    reason: ReasonCode.ImageNotFound,
    detail: '',
    runId: 'r',
    Bucket: 'b',
    Key: 'k',
    ExternalImageId: undefined,
    face: undefined,
    ...extra,
  });
  expect(isPersonsReviewItem(item({ face: { FaceId: 'old-ana', BoundingBoxes: box } }), byFace, false)).toBe(true);
  expect(isPersonsReviewItem(item({ faceIds: ['old-ben', 'old-ana'] }), byFace, false)).toBe(true);
  expect(
    isPersonsReviewItem(item({ record: { OldFaceId: 'old-x', FaceId: 'new-ana', UserId: 'u' } }), byFace, false),
  ).toBe(true);
  expect(
    isPersonsReviewItem(item({ record: { OldFaceId: 'old-x', FaceId: 'new-x', UserId: 'ana' } }), byUser, true),
  ).toBe(true);
  expect(isPersonsReviewItem(item({ record: { Faces: [{ FaceId: 'old-ana' }] } }), byFace, false)).toBe(true);
  expect(
    isPersonsReviewItem(item({ face: { FaceId: 'old-ben', BoundingBoxes: box }, faceIds: ['old-ben'] }), byFace, true),
  ).toBe(false);
});

test("a row is the person's only in the target: by old face, new face or user", () => {
  const row = { OldFaceId: 'old-ana', FaceId: 'new-ana', UserId: 'ana', CollectionId: 'faces-v7' };
  expect(isPersonsRow(row, byFace, 'faces-v7')).toBe(true);
  expect(isPersonsRow({ ...row, OldFaceId: 'old-x' }, byFace, 'faces-v7')).toBe(true);
  expect(isPersonsRow({ ...row, OldFaceId: 'old-x', FaceId: 'new-x' }, byUser, 'faces-v7')).toBe(true);
  expect(isPersonsRow(row, byFace, 'other-target')).toBe(false);
  expect(isPersonsRow({ ...row, OldFaceId: 'old-x', FaceId: 'new-x', UserId: undefined }, byUser, 'faces-v7')).toBe(
    false,
  );
});

test('the objects a run writes are told apart by kind and run, and nothing else under runs/ is taken for one', () => {
  expect(runObjectOf(chunkKey('run-1', 3))).toEqual({ Key: chunkKey('run-1', 3), runId: 'run-1', kind: 'chunk' });
  expect(runObjectOf(redriveRecordsKey('dlq/a'))).toEqual({
    Key: redriveRecordsKey('dlq/a'),
    runId: 'dlq/a',
    kind: 'redrive records',
  });
  expect(runObjectOf(reportKey('run-1', 'csv'))?.kind).toBe('report');
  expect(runObjectOf('runs/run-1/notes.txt')).toBeUndefined();
  expect(runObjectOf('records/run-1/chunks/00000001.json')).toBeUndefined();
});
