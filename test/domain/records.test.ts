import { checkRecord, checkSelectedRecord, refusesMalformed } from '../../src/domain/records';
import { ReasonCode } from '../../src/domain/reasons';

const faceId = (n: number) => `0000000${n}-1111-2222-3333-444444444444`;

const valid = {
  Bucket: 'photos',
  Key: 'people/ana maría+1.jpg',
  ExternalImageId: 'ana',
  CollectionId: 'faces-v7',
  Faces: [
    {
      FaceId: faceId(1),
      ImageId: 'image-1',
      UserId: 'user-ana',
      BoundingBoxes: { Width: 0.2, Height: 0.3, Left: 0.4, Top: 0.1 },
    },
  ],
};

function problemsOf(value: unknown): { reason: ReasonCode; problems: string[] } {
  const check = checkRecord(value);
  if (check.ok) throw new Error('expected the record to be refused');
  return { reason: check.reason, problems: check.problems };
}

test('a record in the original format is accepted as it is; unknown fields are dropped', () => {
  expect(checkRecord({ ...valid, Note: 'extra' })).toEqual({ ok: true, record: valid });
});

test('ExternalImageId, CollectionId, ImageId and UserId are optional', () => {
  const minimal = {
    Bucket: 'photos',
    Key: 'a.jpg',
    Faces: [{ FaceId: faceId(1), BoundingBoxes: valid.Faces[0]!.BoundingBoxes }],
  };
  expect(checkRecord(minimal).ok).toBe(true);
});

test.each([
  ['not an object', 'photos/a.jpg', ['the record must be an object']],
  ['null', null, ['the record must be an object']],
  ['missing Faces', { Bucket: 'photos', Key: 'a.jpg' }, ['Faces is missing']],
  ['empty Faces', { ...valid, Faces: [] }, ['Faces must hold at least one face']],
  ['Faces of the wrong type', { ...valid, Faces: { FaceId: faceId(1) } }, ['Faces must be an array']],
  ['a number for a Key', { ...valid, Key: 42 }, ['Key must be a string']],
  ['an empty Key', { ...valid, Key: '' }, ['Key must have at least 1 characters']],
  // S3 counts bytes: 600 two-byte characters are 1,200 bytes, a key no object can have.
  [
    'a Key over 1024 bytes of UTF-8',
    { ...valid, Key: 'é'.repeat(600) },
    ['Key must be at most 1024 bytes in UTF-8 (S3 holds no longer key)'],
  ],
])('%s is INVALID_RECORD, saying what is wrong', (_, record, problems) => {
  expect(problemsOf(record)).toEqual({ reason: ReasonCode.InvalidRecord, problems });
});

test('every problem of a record is named at once, by its path', () => {
  const record = {
    ...valid,
    ExternalImageId: 'people/ana.jpg',
    Faces: [
      { FaceId: 'FACE-1', BoundingBoxes: { Width: 0, Height: -0.1, Left: 0.4, Top: 0.1 } },
      { FaceId: faceId(2), BoundingBoxes: { Width: 0.2, Height: 0.2, Left: 0.3 } },
    ],
  };
  expect(problemsOf(record).problems).toEqual([
    'ExternalImageId may hold only letters, digits and _ . - : (Rekognition refuses others)',
    'Faces[0].FaceId must be a Rekognition FaceId (a lower-case UUID)',
    'Faces[0].BoundingBoxes.Width must be greater than 0',
    'Faces[0].BoundingBoxes.Height must be greater than 0',
    'Faces[1].BoundingBoxes.Top is missing',
  ]);
});

test('a Key of exactly 1024 bytes, in characters of any width, is accepted', () => {
  expect(checkRecord({ ...valid, Key: `${'é'.repeat(500)}${'k'.repeat(24)}` }).ok).toBe(true);
});

test('a record with many problems names its first ten and counts the rest', () => {
  const faces = Array.from({ length: 12 }, () => ({
    FaceId: 'not-a-face-id',
    BoundingBoxes: valid.Faces[0]!.BoundingBoxes,
  }));
  const { problems } = problemsOf({ ...valid, Faces: faces });
  expect(problems).toHaveLength(11);
  expect(problems.at(-1)).toBe('and 2 more problems');
});

test('a box cut by the image edge is accepted; one wholly outside, or past [-1, 1], is not', () => {
  const withBox = (box: object) => ({ ...valid, Faces: [{ FaceId: faceId(1), BoundingBoxes: box }] });
  expect(checkRecord(withBox({ Width: 0.2, Height: 0.3, Left: -0.05, Top: 0.9 })).ok).toBe(true);
  expect(problemsOf(withBox({ Width: 0.2, Height: 0.3, Left: -0.5, Top: 0.1 })).problems).toEqual([
    'Faces[0].BoundingBoxes lies wholly outside the image',
  ]);
  expect(problemsOf(withBox({ Width: 1.5, Height: 0.3, Left: 1.2, Top: 0.1 })).problems).toEqual([
    'Faces[0].BoundingBoxes.Width must be at most 1',
    'Faces[0].BoundingBoxes.Left must be less than 1',
  ]);
});

test('a FaceId twice in one record is DUPLICATE_FACE_ID', () => {
  const twice = { ...valid, Faces: [valid.Faces[0], { ...valid.Faces[0], UserId: undefined }] };
  expect(problemsOf(twice)).toEqual({
    reason: ReasonCode.DuplicateFaceId,
    problems: [`FaceId ${faceId(1)} appears more than once`],
  });
});

describe('runs of many collections sharing one records file', () => {
  const own = { collectionId: 'faces-v7', refusesUnnamed: false };
  const refusing = { collectionId: 'other-v7', refusesUnnamed: true };
  const { CollectionId: _named, ...unnamed } = valid;

  test('a run takes the records naming its collection and leaves those naming another to that one', () => {
    expect(checkSelectedRecord(own, valid)).toEqual({ ok: true, record: valid });
    expect(checkSelectedRecord(refusing, valid)).toBeUndefined();
  });

  test('only the refusing run takes a record naming no collection, and refuses it as INVALID_RECORD', () => {
    expect(checkSelectedRecord(own, unnamed)).toBeUndefined();
    expect(checkSelectedRecord(refusing, unnamed)).toEqual({
      ok: false,
      reason: ReasonCode.InvalidRecord,
      problems: ['CollectionId is missing: a run without a target indexes each record into the collection it names'],
    });
  });

  test('a CollectionId Rekognition refuses names no collection: the refusing run says why', () => {
    const bad = { ...valid, CollectionId: 'faces v7!' };
    expect(checkSelectedRecord(own, bad)).toBeUndefined();
    expect(checkSelectedRecord(refusing, bad)).toEqual({
      ok: false,
      reason: ReasonCode.InvalidRecord,
      problems: ['CollectionId may hold only letters, digits and _ . -'],
    });
  });

  test('lines that are not records are refused by the refusing run alone; a run of one collection refuses them all', () => {
    expect([refusesMalformed(own), refusesMalformed(refusing), refusesMalformed(undefined)]).toEqual([
      false,
      true,
      true,
    ]);
    expect(checkSelectedRecord(undefined, unnamed)).toEqual({ ok: true, record: unnamed });
  });
});
