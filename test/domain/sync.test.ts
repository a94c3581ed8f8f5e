import { SyncPlanner } from '../../src/domain/sync';

const row = (old: string, user?: string, deletedAt?: string) => ({
  OldFaceId: old,
  FaceId: `new-${old}`,
  ...(user === undefined ? {} : { UserId: user }),
  ...(deletedAt === undefined ? {} : { DeletedAt: deletedAt }),
});

test('an old face gone is a deletion of its new face; one without a row is an addition; one that changed user is a user change', () => {
  const planner = new SyncPlanner();
  for (const r of [row('a', 'ana'), row('b'), row('c', 'cy'), row('d', 'dee')]) planner.addRow(r);
  planner.addOldFace({ FaceId: 'a', UserId: 'ana' });
  planner.addOldFace({ FaceId: 'c', UserId: 'bo' });
  planner.addOldFace({ FaceId: 'd' });
  planner.addOldFace({ FaceId: 'e', ImageId: 'image-e', ExternalImageId: 'e.jpg' });

  expect(planner.changes()).toEqual({
    deletions: [{ OldFaceId: 'b', FaceId: 'new-b', UserId: undefined }],
    userChanges: [
      { OldFaceId: 'c', FaceId: 'new-c', from: 'cy', to: 'bo' },
      { OldFaceId: 'd', FaceId: 'new-d', from: 'dee', to: undefined },
    ],
    additions: [{ FaceId: 'e', ImageId: 'image-e', ExternalImageId: 'e.jpg' }],
    additionsFound: 1,
  });
});

test('a row a sync marked deleted is history: its old face is not deleted again, nor migrated again while gone', () => {
  const planner = new SyncPlanner();
  planner.addRow(row('a', 'ana', '2026-12-01T00:00:00.000Z'));
  planner.addRow(row('b'));
  planner.addOldFace({ FaceId: 'b' });

  expect(planner.changes()).toEqual({ deletions: [], userChanges: [], additions: [], additionsFound: 0 });
});

test('collections in step need nothing', () => {
  const planner = new SyncPlanner();
  planner.addRow(row('a', 'ana'));
  planner.addOldFace({ FaceId: 'a', UserId: 'ana' });

  expect(planner.changes()).toEqual({ deletions: [], userChanges: [], additions: [], additionsFound: 0 });
});

test('rows after the first old face are refused: the listing must see every row first', () => {
  const planner = new SyncPlanner();
  planner.addOldFace({ FaceId: 'a' });

  expect(() => planner.addRow(row('a'))).toThrow('every row comes before the first old face');
});

test("the service's FaceIds, held packed, come back as they were", () => {
  const [old, kept, added] = [
    '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    '1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9',
    '2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f',
  ];
  const planner = new SyncPlanner();
  planner.addRow({ OldFaceId: old ?? '', FaceId: kept ?? '', UserId: 'ana' });
  planner.addOldFace({ FaceId: added ?? '' });

  expect(planner.changes()).toEqual({
    deletions: [{ OldFaceId: old, FaceId: kept, UserId: 'ana' }],
    userChanges: [],
    additions: [{ FaceId: added }],
    additionsFound: 1,
  });
});

test('while a run still migrates the target, the old faces without a row are counted, not kept', () => {
  const planner = new SyncPlanner(false);
  planner.addRow(row('a'));
  for (const faceId of ['a', 'b', 'c']) planner.addOldFace({ FaceId: faceId });

  expect(planner.changes()).toEqual({ deletions: [], userChanges: [], additions: [], additionsFound: 2 });
});
