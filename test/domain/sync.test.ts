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
  });
});

test('a row a sync marked deleted is history: its old face is not deleted again, nor migrated again while gone', () => {
  const planner = new SyncPlanner();
  planner.addRow(row('a', 'ana', '2026-12-01T00:00:00.000Z'));
  planner.addRow(row('b'));
  planner.addOldFace({ FaceId: 'b' });

  expect(planner.changes()).toEqual({ deletions: [], userChanges: [], additions: [] });
});

test('collections in step need nothing', () => {
  const planner = new SyncPlanner();
  planner.addRow(row('a', 'ana'));
  planner.addOldFace({ FaceId: 'a', UserId: 'ana' });

  expect(planner.changes()).toEqual({ deletions: [], userChanges: [], additions: [] });
});

test('rows after the first old face are refused: the listing must see every row first', () => {
  const planner = new SyncPlanner();
  planner.addOldFace({ FaceId: 'a' });

  expect(() => planner.addRow(row('a'))).toThrow('every row comes before the first old face');
});
