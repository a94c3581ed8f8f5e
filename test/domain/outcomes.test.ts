import type { BoundingBox } from '../../src/domain/matching';
import {
  batchFailedReview,
  decideOutcome,
  type IndexedFace,
  MAX_NEW_FACES_IN_REVIEW,
  type RunContext,
  settleFaces,
  tallyOf,
  withoutHeldFaces,
} from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';

const context: RunContext = {
  runId: 'run-1',
  iouThreshold: 0.5,
  sourceCollectionId: 'faces-v6',
  targetCollectionId: 'faces-v7',
  faceModelVersion: '7.0',
  migratedAt: '2026-11-28T05:00:00.000Z',
  recordIndex: 7,
};

const box = (Left: number, Top: number, Width = 0.2, Height = 0.2): BoundingBox => ({ Left, Top, Width, Height });
const oldId = (n: number) => `0000000${n}-aaaa-bbbb-cccc-dddddddddddd`;

function record(...faces: { box: BoundingBox; UserId?: string }[]): ImageRecord {
  return {
    Bucket: 'photos',
    Key: 'people/group.jpg',
    ExternalImageId: 'group',
    CollectionId: 'faces-v7',
    Faces: faces.map((face, i) => ({
      FaceId: oldId(i + 1),
      ImageId: 'old-image',
      UserId: face.UserId,
      BoundingBoxes: face.box,
    })),
  };
}

const indexed = (...boxes: BoundingBox[]): IndexedFace[] =>
  boxes.map((BoundingBox, i) => ({ FaceId: `new-${i + 1}`, ImageId: 'new-image', BoundingBox }));

test('a run with a row expiry gives each row its time to live, in seconds since the epoch; without one, rows carry none', () => {
  const expiring = decideOutcome(record({ box: box(0.1, 0.1) }), indexed(box(0.11, 0.1)), {
    ...context,
    rowsExpireDays: 30,
  });
  expect(expiring.results[0]?.ExpiresAt).toBe(Date.parse('2026-12-28T05:00:00.000Z') / 1000);
  expect(decideOutcome(record({ box: box(0.1, 0.1) }), indexed(box(0.11, 0.1)), context).results[0]).not.toHaveProperty(
    'ExpiresAt',
  );
});

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
      RecordIndex: 7,
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
  expect(outcome.review[0]).toMatchObject({
    reason: ReasonCode.IouBelowThreshold,
    runId: 'run-1',
    ExternalImageId: 'group',
  });
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
  const many = Array.from({ length: 150 }, (_, i) =>
    box(0.2 + (i % 50) * 0.001, 0.2, 0.2, 0.2 + Math.floor(i / 50) * 0.001),
  );
  const outcome = decideOutcome(record({ box: box(0.25, 0.25, 0.1, 0.1) }), indexed(...many), context);

  const newFaces = outcome.review[0]?.newFaces ?? [];
  expect(newFaces).toHaveLength(MAX_NEW_FACES_IN_REVIEW);
  expect(newFaces.map((face) => face.IoU)).toEqual([...newFaces.map((face) => face.IoU)].sort((a, b) => b - a));
  // The taller a box around the old face, the lower its IoU: the tallest fifty are left out.
  expect(newFaces.every((face) => face.BoundingBox.Height < 0.2015)).toBe(true);
  expect(Buffer.byteLength(JSON.stringify(outcome.review[0]))).toBeLessThan(32 * 1024);
});

test("an image's tally counts its rows, its review items by reason and its faces nobody had", () => {
  const outcome = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.5, 0.5) }, { box: box(0.75, 0.1) }),
    indexed(box(0.1, 0.1), box(0.55, 0.5), box(0.1, 0.7), box(0.4, 0.75)),
    context,
  );

  expect(tallyOf({ ...outcome, reusedEarlierIndexing: true })).toEqual({
    matched: 2,
    reviewByReason: { [ReasonCode.IouBelowThreshold]: 1 },
    unmatchedNew: 2,
    reusedEarlierIndexing: true,
  });
});

test('two old faces on one new face: one row, one review item, never two rows for one new face', () => {
  const outcome = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.12, 0.1) }),
    indexed(box(0.11, 0.1)),
    context,
  );

  expect(outcome.results).toHaveLength(1);
  expect(outcome.review.map((item) => item.reason)).toEqual([ReasonCode.IouBelowThreshold]);
});

test("an old face where IndexFaces left a face out goes to review as FACE_FILTERED with the service's reasons", () => {
  const outcome = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.6, 0.6) }),
    indexed(box(0.61, 0.6)),
    context,
    [{ BoundingBox: box(0.11, 0.1), reasons: ['LOW_FACE_QUALITY', 'LOW_SHARPNESS'] }],
  );

  expect(outcome.results.map((row) => row.OldFaceId)).toEqual([oldId(2)]);
  expect(outcome.review.map((item) => [item.reason, item.face?.FaceId])).toEqual([[ReasonCode.FaceFiltered, oldId(1)]]);
  expect(outcome.review[0]?.detail).toMatch(
    /^IndexFaces found a face here \(IoU 0\.9\d+\) but left it out: LOW_FACE_QUALITY, LOW_SHARPNESS; /,
  );
});

test('a filtered face overlapping less than the threshold leaves the old face to its usual reason', () => {
  const outcome = decideOutcome(record({ box: box(0.1, 0.1) }), [], context, [
    { BoundingBox: box(0.5, 0.5), reasons: ['EXCEEDS_MAX_FACES'] },
  ]);

  expect(outcome.review.map((item) => item.reason)).toEqual([ReasonCode.NoFaceDetected]);
});

test("an old face matched to a face another record holds goes to review as NEW_FACE_TAKEN; a held face nobody had is not this record's", () => {
  const decided = decideOutcome(
    record({ box: box(0.1, 0.1) }, { box: box(0.4, 0.4) }),
    indexed(box(0.1, 0.1), box(0.4, 0.4), box(0.7, 0.7)),
    context,
  );

  const outcome = withoutHeldFaces(
    decided,
    new Set(['new-2', 'new-3']),
    record({ box: box(0.1, 0.1) }, { box: box(0.4, 0.4) }),
    context,
  );

  expect(outcome.results.map((row) => row.FaceId)).toEqual(['new-1']);
  expect(outcome.review.map((item) => [item.reason, item.face?.FaceId])).toEqual([[ReasonCode.NewFaceTaken, oldId(2)]]);
  expect(outcome.unmatchedNewFaces).toEqual([]);
});

describe('settleFaces', () => {
  const twoFaces = record({ box: box(0.1, 0.1) }, { box: box(0.4, 0.4) });
  const settle = (
    outcome: ReturnType<typeof decideOutcome>,
    earlier?: { indexing: string; faces: string[] },
    unmatched: 'delete' | 'keep' = 'delete',
    held = new Set<string>(),
  ) =>
    settleFaces(
      outcome,
      {
        indexing: 'now',
        indexed: indexed(box(0.1, 0.1), box(0.7, 0.7)),
        held,
        unmatched,
        targetCollectionId: 'faces-v7',
      },
      earlier,
    );

  test('a first indexing keeps its matched faces and dooms those nobody had, unless kept; nothing is retracted', () => {
    const outcome = decideOutcome(twoFaces, indexed(box(0.1, 0.1), box(0.7, 0.7)), context);

    expect(settle(outcome)).toEqual({ kept: ['new-1'], faces: ['new-1', 'new-2'], doomed: ['new-2'], retractions: [] });
    expect(settle(outcome, undefined, 'keep')).toMatchObject({ kept: ['new-1', 'new-2'], doomed: [] });
  });

  test('an indexing under other settings dooms the earlier faces it does not keep, and retracts the rows of old faces sent to review', () => {
    const outcome = decideOutcome(twoFaces, indexed(box(0.1, 0.1), box(0.7, 0.7)), context);

    expect(settle(outcome, { indexing: 'before', faces: ['old-a', 'new-1'] })).toEqual({
      kept: ['new-1'],
      faces: ['old-a', 'new-1', 'new-2'],
      doomed: ['old-a', 'new-2'],
      retractions: [{ OldFaceId: oldId(2), CollectionId: 'faces-v7', FaceIds: ['old-a'] }],
    });
  });

  test('the same indexing again (a retry, a re-run with the same settings) retracts nothing', () => {
    const outcome = decideOutcome(twoFaces, indexed(box(0.1, 0.1), box(0.7, 0.7)), context);

    expect(settle(outcome, { indexing: 'now', faces: ['new-1', 'new-2'] }).retractions).toEqual([]);
  });

  test('a face another record holds is neither kept nor doomed by this one', () => {
    const outcome = withoutHeldFaces(
      decideOutcome(twoFaces, indexed(box(0.1, 0.1), box(0.7, 0.7)), context),
      new Set(['new-2']),
      twoFaces,
      context,
    );

    expect(settle(outcome, undefined, 'delete', new Set(['new-2']))).toEqual({
      kept: ['new-1'],
      faces: ['new-1'],
      doomed: [],
      retractions: [],
    });
  });
});

test("a failed batch sends every face of its records to review, each with its record's place and the batch's error", () => {
  const face = (FaceId: string) => ({ FaceId, BoundingBoxes: { Width: 0.2, Height: 0.2, Left: 0.1, Top: 0.1 } });
  const records: { index: number; record: ImageRecord }[] = [
    { index: 4, record: { Bucket: 'photos', Key: 'a.jpg', ExternalImageId: 'ana', Faces: [face('f1'), face('f2')] } },
    { index: 5, record: { Bucket: 'photos', Key: 'b.jpg', Faces: [face('f3')] } },
  ];

  const items = batchFailedReview(records, 'run-1', 'batch 2 failed: boom');

  expect(items.map((item) => [item.face?.FaceId, item.recordIndex, item.Key, item.ExternalImageId])).toEqual([
    ['f1', 4, 'a.jpg', 'ana'],
    ['f2', 4, 'a.jpg', 'ana'],
    ['f3', 5, 'b.jpg', undefined],
  ]);
  expect(new Set(items.map((item) => `${item.reason} ${item.runId} ${item.detail}`))).toEqual(
    new Set([`${ReasonCode.BatchFailed} run-1 batch 2 failed: boom`]),
  );
});
