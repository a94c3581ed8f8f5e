import { checkedAgainstSource, erasureOutcome } from '../../src/domain/erasures';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';

const box = { Width: 0.3, Height: 0.3, Left: 0.1, Top: 0.1 };
const record: ImageRecord = {
  Bucket: 'photos',
  Key: 'people/family.jpg',
  ExternalImageId: 'family',
  Faces: [
    { FaceId: 'face-ana', UserId: 'user-mallory', BoundingBoxes: box },
    { FaceId: 'face-bo', BoundingBoxes: box },
    { FaceId: 'face-cy', UserId: 'user-cy', BoundingBoxes: box },
  ],
};

test("each face's user is the source's, whatever the file says, and faces the source lacks are named", () => {
  const source = new Map<string, string | undefined>([
    ['face-ana', 'user-ana'],
    ['face-cy', undefined],
  ]);

  const { record: checked, gone } = checkedAgainstSource(record, source);

  expect(gone).toEqual(['face-bo']);
  expect(checked.Faces.map((face) => [face.FaceId, face.UserId])).toEqual([
    ['face-ana', 'user-ana'],
    ['face-bo', undefined],
    ['face-cy', undefined],
  ]);
});

test('an image holding a deleted face sends every face to review: the deleted ones as such, the others for sharing its image', () => {
  const outcome = erasureOutcome(record, ['face-bo'], 'run-1', 12);

  expect(outcome.results).toEqual([]);
  expect(outcome.unmatchedNewFaces).toEqual([]);
  expect(outcome.review.map((item) => [item.face?.FaceId, item.reason, item.recordIndex, item.runId])).toEqual([
    ['face-ana', ReasonCode.ImageHoldsDeletedFace, 12, 'run-1'],
    ['face-bo', ReasonCode.OldFaceDeleted, 12, 'run-1'],
    ['face-cy', ReasonCode.ImageHoldsDeletedFace, 12, 'run-1'],
  ]);
  expect(outcome.review[0]?.detail).toContain('face-bo');
});
