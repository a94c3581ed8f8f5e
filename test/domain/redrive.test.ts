import type { ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { faceIdsNamed } from '../../src/domain/records';
import { faceIdsOfMessage, faceIdsOfRecords, planRedrive } from '../../src/domain/redrive';

const face = (FaceId: string) => ({ FaceId, BoundingBoxes: { Left: 0.1, Top: 0.1, Width: 0.2, Height: 0.2 } });
const item = (reason: ReasonCode, extra: Partial<ReviewItem>): ReviewItem => ({
  reason,
  detail: 'why',
  runId: 'run-1',
  Bucket: 'photos',
  Key: 'a.jpg',
  ExternalImageId: 'a',
  face: undefined,
  ...extra,
});

test('faces of one image, one message each, become one record again, each face once', () => {
  const plan = planRedrive([
    { messageId: 'm1', item: item(ReasonCode.IouBelowThreshold, { face: face('f1') }) },
    {
      messageId: 'm2',
      item: item(ReasonCode.NoFaceDetected, { Key: 'b.jpg', ExternalImageId: 'b', face: face('f2') }),
    },
    { messageId: 'm3', item: item(ReasonCode.IouBelowThreshold, { face: face('f3') }) },
    // The DLQ is at least once: the same face sent twice.
    { messageId: 'm4', item: item(ReasonCode.IouBelowThreshold, { face: face('f1') }) },
  ]);
  expect(plan.notRedrivable).toEqual([]);
  expect(plan.records).toEqual([
    {
      record: { Bucket: 'photos', Key: 'a.jpg', ExternalImageId: 'a', Faces: [face('f1'), face('f3')] },
      messageIds: ['m1', 'm3', 'm4'],
    },
    { record: { Bucket: 'photos', Key: 'b.jpg', ExternalImageId: 'b', Faces: [face('f2')] }, messageIds: ['m2'] },
  ]);
});

test('a refused record kept as its face ids goes back only from a fixed copy: the plan names it fixable, with the record to fix', () => {
  const refused = item(ReasonCode.InvalidRecord, {
    Bucket: undefined,
    Key: undefined,
    ExternalImageId: undefined,
    recordIndex: 4,
    faceIds: ['f9', 'f10'],
  });
  const plan = planRedrive([{ messageId: 'm1', item: refused }]);

  expect(plan.records).toEqual([]);
  expect(plan.fixable).toEqual(['m1']);
  expect(plan.notRedrivable).toEqual([
    {
      messageId: 'm1',
      why: expect.stringContaining(
        'fix record 4 of the records file and give the fixed copy with --records',
      ) as unknown,
    },
  ]);
  expect(faceIdsOfMessage({ messageId: 'm1', item: refused })).toEqual(['f9', 'f10']);
});

test('what a refused record keeps of its faces is bounded: ids of plausible length, a hundred at most', () => {
  const record = {
    Faces: [...Array.from({ length: 150 }, (_, i) => ({ FaceId: `f${i}` })), { FaceId: 'x'.repeat(65) }, { FaceId: 3 }],
  };
  expect(faceIdsNamed(record)).toEqual(Array.from({ length: 100 }, (_, i) => `f${i}`));
  expect(faceIdsNamed({ Faces: [{ FaceId: 'x'.repeat(65) }, { FaceId: 'kept' }] })).toEqual(['kept']);
  expect(faceIdsNamed('[[[[')).toEqual([]);
});

test('a refused record sent whole, before records were kept as face ids, goes back as it was sent, once however often it was sent', () => {
  const broken = { Bucket: 'photos', Key: 'c.jpg', Faces: [{ FaceId: 'f9', BoundingBoxes: { Left: 2 } }] };
  const plan = planRedrive([
    {
      messageId: 'm1',
      item: item(ReasonCode.InvalidRecord, { Bucket: undefined, Key: undefined, record: broken, recordIndex: 4 }),
    },
    {
      messageId: 'm2',
      item: item(ReasonCode.InvalidRecord, { Bucket: undefined, Key: undefined, record: broken, recordIndex: 4 }),
    },
  ]);
  expect(plan.records).toEqual([{ record: broken, messageIds: ['m1', 'm2'] }]);
});

test('faces migrated already, whose user association failed, are not redriven', () => {
  const plan = planRedrive([
    {
      messageId: 'm1',
      item: item(ReasonCode.UserFaceLimit, { record: { OldFaceId: 'f1', FaceId: 'n1', UserId: 'u' } }),
    },
    { messageId: 'm2', item: item(ReasonCode.ImageNotFound, { Bucket: undefined, Key: undefined }) },
  ]);
  expect(plan.records).toEqual([]);
  expect(plan.notRedrivable.map((entry) => entry.messageId)).toEqual(['m1', 'm2']);
  expect(plan.notRedrivable[0]?.why).toMatch(/^USER_FACE_LIMIT: the face was migrated/);
});

test("the faces a message names are its face or its record's faces; a fixed file is checked against them", () => {
  expect(faceIdsOfMessage({ messageId: 'm', item: item(ReasonCode.IouBelowThreshold, { face: face('f1') }) })).toEqual([
    'f1',
  ]);
  expect(
    faceIdsOfMessage({
      messageId: 'm',
      item: item(ReasonCode.InvalidRecord, { record: { Faces: [face('f2'), { FaceId: 7 }] } }),
    }),
  ).toEqual(['f2']);
  expect(
    faceIdsOfMessage({ messageId: 'm', item: item(ReasonCode.InvalidRecord, { record: 'not an object' }) }),
  ).toEqual([]);
  expect([...faceIdsOfRecords([{ Faces: [face('f1'), face('f2')] }, null, { Faces: 'none' }])]).toEqual(['f1', 'f2']);
});

test('a face another record of the run migrated is not redriven, but a record naming a face twice is', () => {
  const twice = { Bucket: 'photos', Key: 'd.jpg', Faces: [face('f5'), face('f5')] };
  const plan = planRedrive([
    { messageId: 'm1', item: item(ReasonCode.DuplicateFaceId, { face: face('f4') }) },
    {
      messageId: 'm2',
      item: item(ReasonCode.DuplicateFaceId, { Bucket: undefined, Key: undefined, record: twice, recordIndex: 7 }),
    },
  ]);
  expect(plan.notRedrivable).toEqual([
    {
      messageId: 'm1',
      why: 'DUPLICATE_FACE_ID: the face was migrated from another record; fix the records file instead',
    },
  ]);
  expect(plan.records).toEqual([{ record: twice, messageIds: ['m2'] }]);
});

test('an image holding a face deleted from the source is not redriven, neither that face nor the others of its image', () => {
  const plan = planRedrive([
    { messageId: 'm1', item: item(ReasonCode.OldFaceDeleted, { face: face('f1') }) },
    { messageId: 'm2', item: item(ReasonCode.ImageHoldsDeletedFace, { face: face('f2') }) },
    { messageId: 'm3', item: item(ReasonCode.IouBelowThreshold, { face: face('f3'), Key: 'people/other.jpg' }) },
  ]);

  expect(plan.notRedrivable.map((entry) => entry.messageId)).toEqual(['m1', 'm2']);
  expect(plan.notRedrivable[1]?.why).toMatch(
    /^IMAGE_HOLDS_DELETED_FACE: the image holds a face deleted from the source collection/,
  );
  expect(plan.records.map((record) => record.messageIds)).toEqual([['m3']]);
});
