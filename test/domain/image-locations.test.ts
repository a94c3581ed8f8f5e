import {
  addMappingEntry,
  type MappingEntry,
  type ListedFace,
  mappingColumns,
  mappingEntry,
  parseKeyTemplate,
  partitionOf,
  placeByExternalImageId,
  placeByMapping,
  placeByTemplate,
  PlacementError,
  recordOf,
  UnplacedCause,
} from '../../src/domain/image-locations';
import { checkRecord } from '../../src/domain/records';

const face: ListedFace = {
  FaceId: '0c02d3b4-e8e5-496e-ac7c-be76f81bc2b5',
  ImageId: 'ef9082fd-a967-4dd8-91b9-61f7468e7a99',
  ExternalImageId: 'ana',
  BoundingBox: { Width: 0.2, Height: 0.3, Left: 0.4, Top: 0.1 },
};
const { ExternalImageId: _, ...anonymous } = face;

describe('--key-from external-image-id', () => {
  test('the key is prefix, ExternalImageId and suffix, taken literally', () => {
    expect(placeByExternalImageId({ bucket: 'photos', prefix: 'people/', suffix: '.jpg' }, face)).toEqual({
      placed: true,
      location: { Bucket: 'photos', Key: 'people/ana.jpg' },
    });
  });

  test('a face without ExternalImageId cannot be placed, and says why', () => {
    expect(placeByExternalImageId({ bucket: 'photos', prefix: '', suffix: '' }, anonymous)).toEqual({
      placed: false,
      cause: UnplacedCause.NoExternalImageId,
      detail: 'the face has no ExternalImageId',
    });
  });

  test('a bucket S3 would refuse places nothing', () => {
    expect(placeByExternalImageId({ bucket: 'No Such', prefix: '', suffix: '' }, face)).toMatchObject({
      placed: false,
      cause: UnplacedCause.InvalidLocation,
    });
  });
});

describe('--key-template', () => {
  test('every placeholder is filled from the face', () => {
    const template = parseKeyTemplate('s3://photos/{ExternalImageId}/{ImageId}-{FaceId}.png');
    expect(placeByTemplate(template, face)).toEqual({
      placed: true,
      location: { Bucket: 'photos', Key: `ana/${face.ImageId}-${face.FaceId}.png` },
    });
  });

  test('a face missing a placeholder value cannot be placed', () => {
    expect(placeByTemplate(parseKeyTemplate('s3://photos/{ExternalImageId}.jpg'), anonymous)).toMatchObject({
      placed: false,
      cause: UnplacedCause.NoExternalImageId,
    });
  });

  test.each([
    [
      's3://photos/{Name}.jpg',
      'the key template names {Name}; it may name only {FaceId}, {ImageId}, {ExternalImageId}',
    ],
    [
      's3://photos/all.jpg',
      'the key template "s3://photos/all.jpg" names no placeholder: every image would get the same key',
    ],
    ['photos/{FaceId}', /must be s3:\/\/bucket\/key with a literal bucket/],
    ['s3://{ExternalImageId}/x', /must be s3:\/\/bucket\/key with a literal bucket/],
  ])('%s is refused', (text, message) => {
    expect(() => parseKeyTemplate(text)).toThrow(PlacementError);
    expect(() => parseKeyTemplate(text)).toThrow(message);
  });
});

describe('--mapping', () => {
  test('the key column is the one face key named in the header; S3Uri and UserId by name, in any case', () => {
    expect(mappingColumns(['userid', 'ExternalImageId', 'S3URI'], ['u1', 'ana', 's3://photos/ana.jpg'])).toEqual({
      key: 'ExternalImageId',
      keyColumn: 1,
      uriColumn: 2,
      userIdColumn: 0,
    });
  });

  test('without an S3Uri header the column of s3:// values is found by its first row', () => {
    expect(mappingColumns(['FaceId', 'photo'], [face.FaceId, 's3://photos/a.jpg'])).toMatchObject({
      key: 'FaceId',
      uriColumn: 1,
      userIdColumn: undefined,
    });
  });

  test('two key columns need --mapping-key, which picks one', () => {
    expect(() => mappingColumns(['FaceId', 'ImageId', 'S3Uri'], undefined)).toThrow(
      'the mapping file needs one key column named FaceId, ImageId or ExternalImageId; it has FaceId, ImageId: choose one with --mapping-key',
    );
    expect(mappingColumns(['FaceId', 'ImageId', 'S3Uri'], undefined, 'ImageId')).toMatchObject({
      key: 'ImageId',
      keyColumn: 1,
    });
  });

  test('no key column, or no URI column, is a clear refusal', () => {
    expect(() => mappingColumns(['name', 'S3Uri'], undefined)).toThrow('it has name, S3Uri');
    expect(() => mappingColumns(['FaceId', 'where'], [face.FaceId, 'photos/a.jpg'])).toThrow(
      'the mapping file needs one column of s3:// URIs, headed S3Uri (none found)',
    );
    expect(() => mappingColumns(['FaceId', 'S3Uri'], undefined, 'ImageId')).toThrow(
      'the mapping file has no ImageId column',
    );
  });

  test('a row gives its key, location and UserId; an empty UserId leaves the face its own', () => {
    const columns = mappingColumns(['ImageId', 'S3Uri', 'UserId'], undefined);
    expect(mappingEntry(columns, ['img', 's3://photos/a b.jpg', 'ana'], 2)).toEqual({
      key: 'img',
      location: { Bucket: 'photos', Key: 'a b.jpg' },
      userId: 'ana',
    });
    expect(mappingEntry(columns, ['img', 's3://photos/a.jpg', ''], 3).userId).toBeUndefined();
  });

  test('a bad row is named by its line', () => {
    const columns = mappingColumns(['ImageId', 'S3Uri'], undefined);
    expect(() => mappingEntry(columns, ['img', 'photos/a.jpg'], 7)).toThrow(
      'line 7 of the mapping file: "photos/a.jpg" is not an S3 URI of the form s3://bucket/key',
    );
    expect(() => mappingEntry(columns, ['', 's3://photos/a.jpg'], 8)).toThrow(
      'line 8 of the mapping file has no ImageId',
    );
  });

  test('a key given twice keeps one entry for the same image and is refused for another', () => {
    const entries = new Map<string, MappingEntry>();
    const at = (Key: string, userId?: string): MappingEntry => ({
      key: 'img',
      location: { Bucket: 'photos', Key },
      userId,
    });
    addMappingEntry(entries, at('a.jpg'), 'ImageId');
    addMappingEntry(entries, at('a.jpg', 'ana'), 'ImageId');
    expect([...entries.values()]).toEqual([at('a.jpg', 'ana')]);
    expect(() => addMappingEntry(entries, at('b.jpg'), 'ImageId', 'the mapping file s3://maps/m.csv')).toThrow(
      'the mapping file s3://maps/m.csv gives ImageId img two images: s3://photos/a.jpg and s3://photos/b.jpg',
    );
  });

  test('a face the mapping does not name is unplaced as such', () => {
    expect(placeByMapping(undefined, 'ImageId', face)).toMatchObject({
      placed: false,
      cause: UnplacedCause.NotInMapping,
    });
    expect(placeByMapping(undefined, 'ExternalImageId', anonymous)).toMatchObject({
      placed: false,
      cause: UnplacedCause.NoExternalImageId,
    });
  });
});

test("a record holds the image's faces in the records-file format, and passes the run's schema", () => {
  const record = recordOf({ Bucket: 'photos', Key: 'ana.jpg' }, [{ ...face, UserId: 'u1' }], 'faces-v7');
  expect(record).toEqual({
    Bucket: 'photos',
    Key: 'ana.jpg',
    ExternalImageId: 'ana',
    CollectionId: 'faces-v7',
    Faces: [{ FaceId: face.FaceId, ImageId: face.ImageId, UserId: 'u1', BoundingBoxes: face.BoundingBox }],
  });
  expect(checkRecord(record).ok).toBe(true);
  expect(recordOf({ Bucket: 'photos', Key: 'ana.jpg' }, [face], undefined)).not.toHaveProperty('CollectionId');
});

test('partitions are stable and spread keys over all of them', () => {
  const counts = Array<number>(8).fill(0);
  for (let i = 0; i < 8000; i += 1) counts[partitionOf(`image-${i}`, 8)]! += 1;
  expect(Math.min(...counts)).toBeGreaterThan(800);
  expect(partitionOf('image-1', 8)).toBe(partitionOf('image-1', 8));
});
