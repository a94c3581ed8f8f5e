/**
 * Finding the collections a records file names, and the run each gets: unit tests of the pure
 * parts of `start` without `--target`.
 */
import { Readable } from 'node:stream';
import { collectionsOfRecords, runsOfCollections } from '../../src/cli/collections-of-records';
import { UsageError } from '../../src/cli/common';

const record = (CollectionId?: string) =>
  JSON.stringify({
    Bucket: 'photos',
    Key: 'a.jpg',
    ...(CollectionId === undefined ? {} : { CollectionId }),
    Faces: [],
  });
const file = (lines: string[]) => Readable.from([lines.join('\n')]);
const manifest = { Bucket: 'records', Key: 'all.jsonl' };

test('each collection is counted by its records; records naming none, or a name Rekognition refuses, and lines that are not records count as unnamed', async () => {
  const found = await collectionsOfRecords(
    file([record('b'), record('a'), record('b'), record(), record('not a name!'), '{broken']),
    'f',
    10,
  );

  expect([...found.images]).toEqual([
    ['b', 2],
    ['a', 1],
  ]);
  expect(found.unnamed).toBe(3);
});

test('more collections than the most allowed is a usage error that says how to go on', async () => {
  await expect(
    collectionsOfRecords(file([record('a'), record('b'), record('c')]), 's3://records/all.jsonl', 2),
  ).rejects.toEqual(
    new UsageError(
      'the records file s3://records/all.jsonl names more than 2 collections; raise --max-collections, or give --target to index every record into one collection',
    ),
  );
});

test('a run for each collection, smallest first; the smallest run not skipped refuses the unnamed records and counts them', () => {
  const found = {
    images: new Map([
      ['big', 30],
      ['tiny', 1],
      ['mid', 5],
    ]),
    unnamed: 2,
  };
  const skipped = [
    {
      targetCollectionId: 'tiny',
      migration: { runId: 'earlier', endedAt: '2026-12-01T00:00:00.000Z', images: 1, matched: 1 },
    },
  ];

  const runs = runsOfCollections(found, { manifest, etag: '"e1"', source: undefined, skipped });

  expect(runs).toEqual([
    {
      targetCollectionId: 'mid',
      manifest,
      manifestETag: '"e1"',
      sourceCollectionId: undefined,
      records: { collectionId: 'mid', refusesUnnamed: true },
      images: 7,
    },
    {
      targetCollectionId: 'big',
      manifest,
      manifestETag: '"e1"',
      sourceCollectionId: undefined,
      records: { collectionId: 'big', refusesUnnamed: false },
      images: 30,
    },
  ]);
});
