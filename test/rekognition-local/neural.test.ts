import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateCollectionCommand,
  DetectFacesCommand,
  IndexFacesCommand,
  InvalidImageFormatException,
  SearchFacesCommand,
  type FaceRecord,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SAMPLE_PHOTOS } from '../../infra/rekognition-local/calibrate';
import { iou } from '../../src/domain/matching';
import type { BoundingBox } from '../../infra/rekognition-local/store';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';

/** What SSD MobileNet ("7.0") finds in each of the six sample photos. */
const FACES_PER_SAMPLE = [3, 3, 3, 4, 5, 4];

let rekognition: RunningRekognition;
let samples: { Bucket: string; Name: string }[];

beforeAll(async () => {
  rekognition = await startRekognitionLocal();
  samples = await Promise.all(
    SAMPLE_PHOTOS.map(async (photo) => {
      const Name = `samples/${randomUUID()}/${path.basename(photo)}`;
      await rekognition.s3.send(
        new PutObjectCommand({ Bucket: rekognition.bucket, Key: Name, Body: readFileSync(photo) }),
      );
      return { Bucket: rekognition.bucket, Name };
    }),
  );
});

afterAll(async () => {
  await rekognition.stop();
});

async function collectionOfVersion(version: '6.0' | '7.0'): Promise<string> {
  await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: version });
  const collectionId = `neural-${version.replace('.', '-')}-${randomUUID()}`;
  await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '7.0' });
  return collectionId;
}

function box(record: FaceRecord): BoundingBox {
  const { Left = 0, Top = 0, Width = 0, Height = 0 } = record.Face?.BoundingBox ?? {};
  return { Left, Top, Width, Height };
}

test('IndexFaces finds every face of the sample photos, with normalised boxes', async () => {
  const collectionId = await collectionOfVersion('7.0');
  const counts: number[] = [];
  for (const sample of samples) {
    const indexed = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: sample }, QualityFilter: 'NONE' }),
    );
    counts.push(indexed.FaceRecords?.length ?? 0);
    for (const record of indexed.FaceRecords ?? []) {
      const { Left, Top, Width, Height } = box(record);
      expect(Math.min(Left, Top)).toBeGreaterThanOrEqual(0);
      expect(Math.max(Left + Width, Top + Height)).toBeLessThanOrEqual(1);
      // Faces in these group photos fill a few percent to a fifth of the frame's side.
      expect(Width).toBeGreaterThan(0.03);
      expect(Width).toBeLessThan(0.3);
      expect(record.Face?.Confidence).toBeGreaterThan(40);
    }
  }
  expect(counts).toEqual(FACES_PER_SAMPLE);
});

test('the older and newer model versions box the same faces differently but overlapping', async () => {
  // One after the other: each sets the service's current version for the collection it creates.
  const older = await collectionOfVersion('6.0');
  const newer = await collectionOfVersion('7.0');
  const overlaps: number[] = [];
  for (const sample of samples.slice(0, 3)) {
    const [olderFaces, newerFaces] = await Promise.all(
      [older, newer].map(async (collectionId) => {
        const indexed = await rekognition.client.send(
          new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: sample }, QualityFilter: 'NONE' }),
        );
        expect(indexed.FaceModelVersion).toBe(collectionId === older ? '6.0' : '7.0');
        return (indexed.FaceRecords ?? []).map(box);
      }),
    );
    for (const face of olderFaces ?? [])
      overlaps.push(Math.max(...(newerFaces ?? []).map((other) => iou(face, other))));
  }
  expect(overlaps.length).toBeGreaterThanOrEqual(8);
  expect(Math.min(...overlaps)).toBeGreaterThan(0.6);
  expect(Math.max(...overlaps)).toBeLessThan(0.95);
});

test('SearchFaces finds the same face indexed again, and not the other people in the photo', async () => {
  const collectionId = await collectionOfVersion('7.0');
  const index = async () =>
    (
      await rekognition.client.send(
        new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: samples[0]! } }),
      )
    ).FaceRecords ?? [];
  const first = await index();
  const again = await index();
  const searched = first[0]?.Face?.FaceId ?? '';
  const twin = again.find((record) => iou(box(record), box(first[0]!)) > 0.95)?.Face?.FaceId;

  const found = await rekognition.client.send(
    new SearchFacesCommand({ CollectionId: collectionId, FaceId: searched, FaceMatchThreshold: 80 }),
  );

  expect(twin).toBeDefined();
  expect(found.FaceMatches?.map((match) => match.Face?.FaceId)).toEqual([twin]);
  expect(found.FaceMatches?.[0]?.Similarity).toBeGreaterThan(99);
});

test('a PNG with an alpha channel is read like the JPEG it was made from', async () => {
  const pngFile = path.join(rekognition.stateDir, 'sample1-rgba.png');
  execFileSync(process.execPath, [
    '--require',
    'tsx/cjs',
    path.resolve(__dirname, '../fixtures/png-from-jpeg.ts'),
    SAMPLE_PHOTOS[0]!,
    pngFile,
  ]);
  const Name = `samples/${randomUUID()}.png`;
  await rekognition.s3.send(
    new PutObjectCommand({ Bucket: rekognition.bucket, Key: Name, Body: readFileSync(pngFile) }),
  );

  const detected = await rekognition.client.send(
    new DetectFacesCommand({ Image: { S3Object: { Bucket: rekognition.bucket, Name } } }),
  );

  expect(detected.FaceDetails).toHaveLength(FACES_PER_SAMPLE[0]!);
});

test('bytes that start like a JPEG but are not one are InvalidImageFormatException', async () => {
  const broken = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('not really a jpeg')]);
  await expect(rekognition.client.send(new DetectFacesCommand({ Image: { Bytes: broken } }))).rejects.toThrow(
    InvalidImageFormatException,
  );
});
