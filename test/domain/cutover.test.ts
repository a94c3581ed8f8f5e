import {
  type CollectionFace,
  CutoverComparison,
  inStep,
  type MigrationRow,
  packedFaceId,
  unpackedFaceId,
} from '../../src/domain/cutover';

const face = (faceId: string, userId?: string): CollectionFace => ({ faceId, userId });
const row = (oldFaceId: string, newFaceId: string): MigrationRow => ({ oldFaceId, newFaceId });

/** Two users of two faces each and a face of nobody, migrated face for face. */
const OLD = [face('o1', 'ana'), face('o2', 'ana'), face('o3', 'bo'), face('o4', 'bo'), face('o5')];
const NEW = [face('n1', 'ana'), face('n2', 'ana'), face('n3', 'bo'), face('n4', 'bo'), face('n5')];
const ROWS = [row('o1', 'n1'), row('o2', 'n2'), row('o3', 'n3'), row('o4', 'n4'), row('o5', 'n5')];

const none = { count: 0, examples: [] };

function compareCollections(
  oldFaces: CollectionFace[],
  newFaces: CollectionFace[],
  rows: MigrationRow[],
  { examples }: { examples: number },
) {
  const comparison = new CutoverComparison(examples);
  oldFaces.forEach((face) => comparison.oldFace(face));
  newFaces.forEach((face) => comparison.newFace(face));
  rows.forEach((migrated) => comparison.row(migrated));
  return comparison.findings();
}

test('collections migrated face for face and user for user are in step', () => {
  const findings = compareCollections(OLD, NEW, ROWS, { examples: 10 });

  expect(findings).toEqual({
    oldFaces: 5,
    newFaces: 5,
    rows: 5,
    oldFacesWithoutRow: none,
    rowsWithOldFaceGone: none,
    rowsWithNewFaceGone: none,
    newFacesWithoutRow: none,
    usersDiffering: none,
  });
  expect(inStep(findings)).toBe(true);
});

test('a face added to the old collection since has no row, and its user lacks it', () => {
  const findings = compareCollections([...OLD, face('o6', 'ana')], NEW, ROWS, { examples: 10 });

  expect(findings.oldFacesWithoutRow).toEqual({ count: 1, examples: ['o6'] });
  expect(findings.usersDiffering).toEqual({ count: 1, examples: [{ userId: 'ana', missing: 1, extra: 0 }] });
  expect(inStep(findings)).toBe(false);
});

test("a face deleted from the old collection leaves its row behind, and its new face is its user's extra", () => {
  const findings = compareCollections(
    OLD.filter(({ faceId }) => faceId !== 'o3'),
    NEW,
    ROWS,
    { examples: 10 },
  );

  expect(findings.rowsWithOldFaceGone).toEqual({ count: 1, examples: [row('o3', 'n3')] });
  expect(findings.usersDiffering.examples).toEqual([{ userId: 'bo', missing: 0, extra: 1 }]);
  expect(findings.oldFacesWithoutRow).toEqual(none);
  expect(findings.newFacesWithoutRow).toEqual(none);
});

test('a new face without a row and a row without its new face are both differences', () => {
  const findings = compareCollections(OLD, [...NEW.filter(({ faceId }) => faceId !== 'n5'), face('n9')], ROWS, {
    examples: 10,
  });

  expect(findings.rowsWithNewFaceGone).toEqual({ count: 1, examples: [row('o5', 'n5')] });
  expect(findings.newFacesWithoutRow).toEqual({ count: 1, examples: ['n9'] });
  // Neither face belongs to a user.
  expect(findings.usersDiffering).toEqual(none);
});

test('a face moved from one user to another in the old collection makes both users differ', () => {
  const moved = OLD.map((old) => (old.faceId === 'o2' ? face('o2', 'bo') : old));
  const findings = compareCollections(moved, NEW, ROWS, { examples: 10 });

  expect(findings.usersDiffering).toEqual({
    count: 2,
    examples: [
      { userId: 'ana', missing: 0, extra: 1 },
      { userId: 'bo', missing: 1, extra: 0 },
    ],
  });
  expect(findings.oldFacesWithoutRow).toEqual(none);
  expect(findings.rowsWithOldFaceGone).toEqual(none);
});

test('a face that left its user in the old collection is an extra member of the user in the new one', () => {
  const left = OLD.map((old) => (old.faceId === 'o4' ? face('o4') : old));

  expect(compareCollections(left, NEW, ROWS, { examples: 10 }).usersDiffering.examples).toEqual([
    { userId: 'bo', missing: 0, extra: 1 },
  ]);
});

test('every difference is counted, and only the first examples are kept', () => {
  const oldFaces = Array.from({ length: 50 }, (_, i) => face(`o${i}`));
  const findings = compareCollections(oldFaces, [], [], { examples: 3 });

  expect(findings.oldFacesWithoutRow).toEqual({ count: 50, examples: ['o0', 'o1', 'o2'] });
  expect(findings.oldFaces).toBe(50);
});

test("FaceIds come back as they were given, the service's UUIDs and any other", () => {
  const uuid = '0b5a2f6e-91c4-4d4e-8f3a-5c2d1e0f9a7b';
  const upper = '0B5A2F6E-91C4-4D4E-8F3A-5C2D1E0F9A7B';
  const findings = compareCollections([face(uuid), face(upper), face('not-a-uuid')], [], [], { examples: 10 });

  expect(findings.oldFacesWithoutRow).toEqual({ count: 3, examples: [uuid, upper, 'not-a-uuid'] });
});

test('every FaceId packs and unpacks to itself: UUIDs of any first byte, and other ids of any length', () => {
  const uuids = Array.from(
    { length: 256 },
    (_, byte) => `${byte.toString(16).padStart(2, '0')}5a2f6e-91c4-4d4e-8f3a-5c2d1e0f9a7b`,
  );
  const others = Array.from({ length: 20 }, (_, length) => 'x'.repeat(length + 1));
  for (const faceId of [...uuids, ...others]) expect(unpackedFaceId(packedFaceId(faceId))).toBe(faceId);
  // A UUID is kept in 16 characters; no other id is, so the two cannot be confused.
  expect(packedFaceId(uuids[0] as string)).toHaveLength(16);
  expect(others.map((faceId) => packedFaceId(faceId).length)).not.toContain(16);
});
