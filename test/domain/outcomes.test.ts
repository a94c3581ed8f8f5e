import type { BoundingBox } from '../../src/domain/matching';
import { decideOutcome, type IndexedFace, MAX_NEW_FACES_IN_REVIEW, type RunContext } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';

const context: RunContext = {
  runId: 'run-1',
  iouThreshold: 0.5,
  sourceCollectionId: 'faces-v6',
  targetCollectionId: 'faces-v7',
  faceModelVersion: '7.0',
  migratedAt: '2026-11-28T05:00:00.000Z',
};

const box = (Left: number, Top: number, Width = 0.2, Height = 0.2): BoundingBox => ({ Left, Top, Width, Height });
const oldId = (n: number) => `0000000${n}-aaaa-bbbb-cccc-dddddddddddd`;

function record(...faces: { box: BoundingBox; UserId?: string }[]): ImageRecord {
  return {
    Bucket: 'photos',
    Key: 'people/group.jpg',
    ExternalImageId: 'group',
    CollectionId: 'faces-v7',
    Faces: faces.map((face, i) => ({ FaceId: oldId(i + 1), ImageId: 'old-image', UserId: face.UserId, BoundingBoxes: face.box })),
  };
}

const indexed = (...boxes: BoundingBox[]): IndexedFace[] =>
  boxes.map((BoundingBox, i) => ({ FaceId: `new-${i + 1}`, ImageId: 'new-image', BoundingBox }));

test('a matched face gives one result row carrying both ids, both boxes, the user and the run', () => {
  const outcome = decideOutcome(record({ box: box(0.1, 0.1), UserId: 'user-ana' }), indexed(box(0.11, 0.1)), context);

  expect(outcome.review).toEqual([]);
  expect(outcome.unmatchedNewFaces).toEqual([]);
  expect(outcome.results).toEqual([
    {
      OldFaceId: oldId(1),
      FaceId: 'new-1',
      OldImageId: 'old-image',
      ImageId: 'new-image',
      ExternalImageId: 'group',
      UserId: 'user-ana',
      Bucket: 'photos',
      Key: 'people/group.jpg',
      BoundingBox: box(0.11, 0.1),
      OldBoundingBox: box(0.1, 0.1),
      IoU: expect.closeTo(0.9048, 3) as number,
      SourceCollectionId: 'faces-v6',
      CollectionId: 'faces-v7',
      FaceModelVersion: '7.0',
      RunId: 'run-1',
      MigratedAt: '2026-11-28T05:00:00.000Z',
    },
  ]);
});

test('several faces match their own partners; a face the old model missed is left over', () => {
  const outcome = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.6, 0.1) }),
    indexed(box(0.6, 0.11), box(0.1, 0.12), box(0.4, 0.7)),
    context,
  );

  expect(outcome.results.map((row) => [row.OldFaceId, row.FaceId])).toEqual([
    [oldId(1), 'new-2'],
    [oldId(2), 'new-1'],
  ]);
  expect(outcome.unmatchedNewFaces.map((face) => face.FaceId)).toEqual(['new-3']);
});

test('when the new model finds no face, every old face goes to review as NO_FACE_DETECTED', () => {
  const outcome = decideOutcome(record({ box: box(0.1, 0.1) }, { box: box(0.5, 0.5) }), [], context);

  expect(outcome.results).toEqual([]);
  expect(outcome.review.map((item) => [item.reason, item.face?.FaceId, item.Key])).toEqual([
    [ReasonCode.NoFaceDetected, oldId(1), 'people/group.jpg'],
    [ReasonCode.NoFaceDetected, oldId(2), 'people/group.jpg'],
  ]);
  expect(outcome.review.map((item) => item.newFaces)).toEqual([undefined, undefined]);
});

test('an old face with no new face close enough goes to review as IOU_BELOW_THRESHOLD, with its best IoU', () => {
  const outcome = decideOutcome(record({ box: box(0.1, 0.1) }), indexed(box(0.2, 0.1)), context);

  expect(outcome.results).toEqual([]);
  expect(outcome.review).toHaveLength(1);
  expect(outcome.review[0]).toMatchObject({ reason: ReasonCode.IouBelowThreshold, runId: 'run-1', ExternalImageId: 'group' });
  expect(outcome.review[0]?.detail).toContain('best IoU 0.333');
  expect(outcome.unmatchedNewFaces.map((face) => face.FaceId)).toEqual(['new-1']);
});

test('a face below the threshold carries the new boxes of its image with their IoU against it, best first', () => {
  const outcome = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.6, 0.6) }),
    indexed(box(0.11, 0.1), box(0.7, 0.6), box(0.8, 0.1)),
    context,
  );

  expect(outcome.review.map((item) => item.face?.FaceId)).toEqual([oldId(2)]);
  expect(outcome.review[0]?.newFaces).toEqual([
    { BoundingBox: box(0.7, 0.6), IoU: expect.closeTo(1 / 3, 3) as number },
    { BoundingBox: box(0.11, 0.1), IoU: 0 },
    { BoundingBox: box(0.8, 0.1), IoU: 0 },
  ]);
});

test('an image of many faces puts at most the best hundred into a review item', () => {
  const many = Array.from({ length: 150 }, (_, i) => box(0.2 + (i % 50) * 0.001, 0.2, 0.2, 0.2 + Math.floor(i / 50) * 0.001));
  const outcome = decideOutcome(record({ box: box(0.25, 0.25, 0.1, 0.1) }), indexed(...many), context);

  const newFaces = outcome.review[0]?.newFaces ?? [];
  expect(newFaces).toHaveLength(MAX_NEW_FACES_IN_REVIEW);
  expect(newFaces.map((face) => face.IoU)).toEqual([...newFaces.map((face) => face.IoU)].sort((a, b) => b - a));
  // The taller a box around the old face, the lower its IoU: the tallest fifty are left out.
  expect(newFaces.every((face) => face.BoundingBox.Height < 0.2015)).toBe(true);
  expect(Buffer.byteLength(JSON.stringify(outcome.review[0]))).toBeLessThan(32 * 1024);
});

test('two old faces on one new face: one row, one review item, never two rows for one new face', () => {
  const outcome = decideOutcome(record({ box: box(0.1, 0.1) }, { box: box(0.12, 0.1) }), indexed(box(0.11, 0.1)), context);

  expect(outcome.results).toHaveLength(1);
  expect(outcome.review.map((item) => item.reason)).toEqual([ReasonCode.IouBelowThreshold]);
});
