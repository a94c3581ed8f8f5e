import { randomBytes } from 'node:crypto';
import type { ResultRow } from '../../src/domain/outcomes';
import { parseRowBody, rowSignatureMatches, signRowBody } from '../../src/domain/result-rows';

const box = { Width: 0.3, Height: 0.3, Left: 0.2, Top: 0.2 };
const row: ResultRow = {
  OldFaceId: '00000001-aaaa-bbbb-cccc-dddddddddddd',
  FaceId: '00000002-aaaa-bbbb-cccc-dddddddddddd',
  OldImageId: 'old-image',
  ImageId: 'new-image',
  ExternalImageId: 'ana',
  UserId: 'user-ana',
  Bucket: 'photos',
  Key: 'people/ana.jpg',
  BoundingBox: box,
  OldBoundingBox: box,
  IoU: 0.91,
  SourceCollectionId: 'faces-v6',
  CollectionId: 'faces-v7',
  FaceModelVersion: '7.0',
  RunId: 'run-1',
  MigratedAt: '2026-12-05T05:00:00.000Z',
  RecordIndex: 3,
};

test('a row as the worker sends it is read back whole', () => {
  expect(parseRowBody(JSON.stringify(row))).toEqual(row);
});

test.each([
  ['no JSON', 'not json'],
  ['a field missing', JSON.stringify({ ...row, CollectionId: undefined })],
  ['a field of the wrong kind', JSON.stringify({ ...row, IoU: '0.9' })],
  ['an IoU out of range', JSON.stringify({ ...row, IoU: 3 })],
  ['a field the row does not have', JSON.stringify({ ...row, DeleteCollection: true })],
  ['a collection that names a path', JSON.stringify({ ...row, CollectionId: '../other' })],
  ['a time that is no time', JSON.stringify({ ...row, MigratedAt: 'yesterday' })],
])('%s is no row', (_, body) => {
  expect(parseRowBody(body)).toBeUndefined();
});

test('a signature holds for its body under its key, and for no other body or key', () => {
  const key = randomBytes(32);
  const body = JSON.stringify(row);
  const signature = signRowBody(body, key);

  expect(rowSignatureMatches(body, signature, key)).toBe(true);
  expect(rowSignatureMatches(JSON.stringify({ ...row, FaceId: 'someone-else' }), signature, key)).toBe(false);
  expect(rowSignatureMatches(body, signature, randomBytes(32))).toBe(false);
  expect(rowSignatureMatches(body, 'short', key)).toBe(false);
});
