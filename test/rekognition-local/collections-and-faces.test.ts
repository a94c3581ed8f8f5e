import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteCollectionCommand,
  DeleteFacesCommand,
  DescribeCollectionCommand,
  IndexFacesCommand,
  InvalidImageFormatException,
  InvalidPaginationTokenException,
  InvalidParameterException,
  InvalidS3ObjectException,
  ImageTooLargeException,
  ListCollectionsCommand,
  ListFacesCommand,
  ListTagsForResourceCommand,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
  SearchFacesByImageCommand,
  SearchFacesCommand,
  ServiceQuotaExceededException,
  TagResourceCommand,
  UntagResourceCommand,
  type BoundingBox,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { iou as boxIou } from '../../src/domain/matching';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';

let rekognition: RunningRekognition;

beforeAll(async () => {
  rekognition = await startRekognitionLocal();
});

afterAll(async () => {
  await rekognition.stop();
});

const newCollectionId = () => `faces-${randomUUID()}`;

async function createCollection(collectionId = newCollectionId()): Promise<string> {
  await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  return collectionId;
}

/** IoU of two boxes as the SDK types them, with every member optional. */
function iou(a: BoundingBox, b: BoundingBox): number {
  const complete = ({ Left = 0, Top = 0, Width = 0, Height = 0 }: BoundingBox) => ({ Left, Top, Width, Height });
  return boxIou(complete(a), complete(b));
}

describe('collections', () => {
  test('a created collection is described, listed with its model version, and deleted', async () => {
    const collectionId = newCollectionId();
    const created = await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
    expect(created).toMatchObject({
      StatusCode: 200,
      FaceModelVersion: '7.0',
      CollectionArn: `aws:rekognition:us-east-1:123456789012:collection/${collectionId}`,
    });

    const described = await rekognition.client.send(new DescribeCollectionCommand({ CollectionId: collectionId }));
    expect(described).toMatchObject({
      FaceCount: 0,
      UserCount: 0,
      FaceModelVersion: '7.0',
      CollectionARN: created.CollectionArn,
    });
    expect(Math.abs((described.CreationTimestamp?.getTime() ?? 0) - Date.now())).toBeLessThan(60_000);

    const listed = await rekognition.client.send(new ListCollectionsCommand({}));
    const index = listed.CollectionIds?.indexOf(collectionId) ?? -1;
    expect(index).toBeGreaterThanOrEqual(0);
    expect(listed.FaceModelVersions?.[index]).toBe('7.0');

    await rekognition.client.send(new DeleteCollectionCommand({ CollectionId: collectionId }));
    await expect(
      rekognition.client.send(new DescribeCollectionCommand({ CollectionId: collectionId })),
    ).rejects.toThrow(ResourceNotFoundException);
  });

  test('tags given at creation and later are listed by the ARN IAM uses, and removed by key', async () => {
    const collectionId = newCollectionId();
    await rekognition.client.send(
      new CreateCollectionCommand({ CollectionId: collectionId, Tags: { owner: 'migration' } }),
    );
    const ResourceArn = `arn:aws:rekognition:us-east-1:123456789012:collection/${collectionId}`;

    await rekognition.client.send(new TagResourceCommand({ ResourceArn, Tags: { team: 'faces' } }));
    expect((await rekognition.client.send(new ListTagsForResourceCommand({ ResourceArn }))).Tags).toEqual({
      owner: 'migration',
      team: 'faces',
    });
    await rekognition.client.send(new UntagResourceCommand({ ResourceArn, TagKeys: ['owner'] }));
    expect((await rekognition.client.send(new ListTagsForResourceCommand({ ResourceArn }))).Tags).toEqual({
      team: 'faces',
    });
  });

  test('tags are refused as AWS refuses them: a reserved key, too many, an ARN of nothing or of no collection', async () => {
    const collectionId = await createCollection();
    const ResourceArn = `arn:aws:rekognition:us-east-1:123456789012:collection/${collectionId}`;
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, index) => [`key-${index}`, 'value']));

    await expect(
      rekognition.client.send(new TagResourceCommand({ ResourceArn, Tags: { 'aws:owner': 'me' } })),
    ).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(rekognition.client.send(new TagResourceCommand({ ResourceArn, Tags: many }))).rejects.toThrow(
      ServiceQuotaExceededException,
    );
    await expect(
      rekognition.client.send(new CreateCollectionCommand({ CollectionId: newCollectionId(), Tags: many })),
    ).rejects.toThrow(ServiceQuotaExceededException);
    await expect(
      rekognition.client.send(
        new TagResourceCommand({
          ResourceArn: `arn:aws:rekognition:us-east-1:123456789012:collection/${newCollectionId()}`,
          Tags: { a: 'b' },
        }),
      ),
    ).rejects.toThrow(ResourceNotFoundException);
    await expect(
      rekognition.client.send(
        new ListTagsForResourceCommand({ ResourceArn: `arn:aws:s3:::bucket-of-${collectionId}` }),
      ),
    ).rejects.toThrow(InvalidParameterException);
  });

  test('creating an existing collection fails with ResourceAlreadyExistsException', async () => {
    const collectionId = await createCollection();
    await expect(rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }))).rejects.toThrow(
      ResourceAlreadyExistsException,
    );
  });

  test('a collection keeps the version it was created with when the current version changes', async () => {
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '6.0' });
    const old = await createCollection();
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '7.0' });
    const current = await createCollection();

    const versions = await Promise.all(
      [old, current].map(
        async (id) =>
          (await rekognition.client.send(new DescribeCollectionCommand({ CollectionId: id }))).FaceModelVersion,
      ),
    );
    expect(versions).toEqual(['6.0', '7.0']);
  });

  test('ListCollections pages with NextToken and rejects a forged token', async () => {
    await Promise.all([createCollection(), createCollection(), createCollection()]);
    const seen: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await rekognition.client.send(new ListCollectionsCommand({ MaxResults: 2, NextToken }));
      expect(page.CollectionIds?.length).toBeLessThanOrEqual(2);
      seen.push(...(page.CollectionIds ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    const all = await rekognition.client.send(new ListCollectionsCommand({}));
    expect(seen).toEqual(all.CollectionIds);

    await expect(rekognition.client.send(new ListCollectionsCommand({ NextToken: 'not-a-token!' }))).rejects.toThrow(
      InvalidPaginationTokenException,
    );
  });
});

describe('IndexFaces on synthetic images', () => {
  test('every declared face is indexed once, near its declared box, with the ExternalImageId', async () => {
    const collectionId = await createCollection();
    const image = await rekognition.putImage(`photos/${randomUUID()}.png`, [
      { person: 'ana', box: [0.4, 0.1, 0.2, 0.3] },
      { person: 'bo', box: [0.05, 0.5, 0.1, 0.15] },
    ]);

    const indexed = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: image }, ExternalImageId: 'ana-and-bo' }),
    );

    expect(indexed.FaceModelVersion).toBe('7.0');
    expect(indexed.UnindexedFaces).toEqual([]);
    const faces = indexed.FaceRecords?.map((record) => record.Face) ?? [];
    expect(faces).toHaveLength(2);
    expect(new Set(faces.map((face) => face?.ImageId)).size).toBe(1);
    expect(faces.every((face) => face?.ExternalImageId === 'ana-and-bo' && face.IndexFacesModelVersion === '7.0')).toBe(
      true,
    );
    // Largest first, each close to what was declared.
    expect(iou(faces[0]?.BoundingBox ?? {}, { Left: 0.4, Top: 0.1, Width: 0.2, Height: 0.3 })).toBeGreaterThan(0.75);
    expect(iou(faces[1]?.BoundingBox ?? {}, { Left: 0.05, Top: 0.5, Width: 0.1, Height: 0.15 })).toBeGreaterThan(0.75);
    const described = await rekognition.client.send(new DescribeCollectionCommand({ CollectionId: collectionId }));
    expect(described.FaceCount).toBe(2);
  });

  test('image bytes work like an S3 object', async () => {
    const collectionId = await createCollection();
    const indexed = await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng([{ person: 'cy', box: [0.3, 0.3, 0.3, 0.3] }]) },
      }),
    );
    expect(indexed.FaceRecords).toHaveLength(1);
  });

  test('the two model versions box the same face differently but overlapping', async () => {
    const faces = Array.from({ length: 40 }, (_, i) => ({
      person: `person-${i}`,
      box: [0.1 + (i % 5) * 0.15, 0.1 + Math.floor(i / 5) * 0.1, 0.1, 0.08] as [number, number, number, number],
    }));
    const image = await rekognition.putImage(`photos/${randomUUID()}.png`, faces);
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '6.0' });
    const old = await createCollection();
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '7.0' });
    const current = await createCollection();

    const [oldFaces, newFaces] = await Promise.all(
      [old, current].map(async (collectionId) => {
        const indexed = await rekognition.client.send(
          new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: image }, QualityFilter: 'NONE' }),
        );
        return indexed.FaceRecords?.map((record) => record.Face?.BoundingBox ?? {}) ?? [];
      }),
    );

    // The declared faces are far apart, so each old box's best overlap is the same person's new box.
    const overlaps = (oldFaces ?? []).map((box) => Math.max(...(newFaces ?? []).map((other) => iou(box, other))));
    expect(overlaps).toHaveLength(40);
    expect(Math.min(...overlaps)).toBeGreaterThan(0.6);
    expect(Math.max(...overlaps)).toBeLessThan(1);
  });

  test('MaxFaces keeps the largest faces; the rest are unindexed with EXCEEDS_MAX_FACES', async () => {
    const collectionId = await createCollection();
    const image = await rekognition.putImage(`photos/${randomUUID()}.png`, [
      { person: 'small', box: [0.0, 0.0, 0.05, 0.05] },
      { person: 'large', box: [0.5, 0.5, 0.4, 0.4] },
      { person: 'medium', box: [0.2, 0.2, 0.2, 0.2] },
    ]);

    const indexed = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: image }, MaxFaces: 2 }),
    );

    expect(indexed.FaceRecords?.map((record) => Math.round((record.Face?.BoundingBox?.Width ?? 0) * 10))).toEqual([
      4, 2,
    ]);
    expect(indexed.UnindexedFaces?.map((face) => face.Reasons)).toEqual([['EXCEEDS_MAX_FACES']]);
  });

  test('faces declared in S3 user metadata are indexed like those in a PNG', async () => {
    const collectionId = await createCollection();
    const Name = `photos/${randomUUID()}.jpg`;
    await rekognition.s3.send(
      new PutObjectCommand({
        Bucket: rekognition.bucket,
        Key: Name,
        Body: Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
        Metadata: { 'rekognition-faces': JSON.stringify([{ person: 'meta', box: [0.2, 0.2, 0.3, 0.4] }]) },
      }),
    );

    const indexed = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: { Bucket: rekognition.bucket, Name } } }),
    );

    expect(indexed.FaceRecords).toHaveLength(1);
    expect(
      iou(indexed.FaceRecords?.[0]?.Face?.BoundingBox ?? {}, { Left: 0.2, Top: 0.2, Width: 0.3, Height: 0.4 }),
    ).toBeGreaterThan(0.75);
  });

  test('at most 100 faces of one image are indexed', async () => {
    const collectionId = await createCollection();
    const crowd = Array.from({ length: 105 }, (_, i) => ({
      person: `crowd-${i}`,
      box: [(i % 15) * 0.066, Math.floor(i / 15) * 0.14, 0.05, 0.1] as [number, number, number, number],
    }));

    const indexed = await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng(crowd) },
        QualityFilter: 'NONE',
      }),
    );

    expect(indexed.FaceRecords).toHaveLength(100);
    expect(indexed.UnindexedFaces?.map((face) => face.Reasons)).toEqual(
      Array.from({ length: 5 }, () => ['EXCEEDS_MAX_FACES']),
    );
  });

  test('QualityFilter leaves low-quality faces unindexed, and NONE indexes them', async () => {
    const collectionId = await createCollection();
    const image = await rekognition.putImage(`photos/${randomUUID()}.png`, [
      { person: 'clear', box: [0.1, 0.1, 0.3, 0.3], quality: 90 },
      { person: 'blurred', box: [0.5, 0.5, 0.3, 0.3], quality: 40 },
    ]);

    const high = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: image }, QualityFilter: 'HIGH' }),
    );
    const none = await rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object: image }, QualityFilter: 'NONE' }),
    );

    expect(high.FaceRecords).toHaveLength(1);
    expect(high.UnindexedFaces?.map((face) => face.Reasons)).toEqual([['LOW_FACE_QUALITY', 'LOW_SHARPNESS']]);
    expect(none.FaceRecords).toHaveLength(2);
  });
});

describe('IndexFaces errors', () => {
  test('a missing object or bucket is InvalidS3ObjectException', async () => {
    const collectionId = await createCollection();
    for (const S3Object of [
      { Bucket: rekognition.bucket, Name: 'no/such/key.jpg' },
      { Bucket: 'no-such-bucket', Name: 'a.jpg' },
    ]) {
      await expect(
        rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image: { S3Object } })),
      ).rejects.toThrow(InvalidS3ObjectException);
    }
  });

  test('a text file named .jpg and an empty object are InvalidImageFormatException', async () => {
    const collectionId = await createCollection();
    for (const Body of [Buffer.from('this is not an image'), Buffer.alloc(0)]) {
      const Name = `photos/${randomUUID()}.jpg`;
      await rekognition.s3.send(new PutObjectCommand({ Bucket: rekognition.bucket, Key: Name, Body }));
      await expect(
        rekognition.client.send(
          new IndexFacesCommand({
            CollectionId: collectionId,
            Image: { S3Object: { Bucket: rekognition.bucket, Name } },
          }),
        ),
      ).rejects.toThrow(InvalidImageFormatException);
    }
  });

  test('an S3 object over 15 MB is ImageTooLargeException; bytes over 5 MB are a ValidationException', async () => {
    const collectionId = await createCollection();
    const Name = `photos/${randomUUID()}.jpg`;
    const huge = Buffer.alloc(15 * 1024 * 1024 + 1, 0);
    huge.set([0xff, 0xd8, 0xff]);
    await rekognition.s3.send(new PutObjectCommand({ Bucket: rekognition.bucket, Key: Name, Body: huge }));
    await expect(
      rekognition.client.send(
        new IndexFacesCommand({
          CollectionId: collectionId,
          Image: { S3Object: { Bucket: rekognition.bucket, Name } },
        }),
      ),
    ).rejects.toThrow(ImageTooLargeException);

    const bytes = Buffer.alloc(5 * 1024 * 1024 + 1, 0);
    bytes.set([0xff, 0xd8, 0xff]);
    const tooManyBytes = rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: bytes } }),
    );
    await expect(tooManyBytes).rejects.toMatchObject({ name: 'ValidationException' });
    await expect(tooManyBytes).rejects.toThrow(
      "at 'image.bytes' failed to satisfy constraint: Member must have length less than or equal to 5242880",
    );
  });

  test('constraint violations are ValidationExceptions worded like AWS, all reported at once', async () => {
    await expect(
      rekognition.client.send(
        new IndexFacesCommand({
          CollectionId: 'has space',
          ExternalImageId: 'people/ana.jpg',
          MaxFaces: 0,
          Image: { S3Object: { Bucket: rekognition.bucket, Name: 'x.png' } },
        }),
      ),
    ).rejects.toMatchObject({
      name: 'ValidationException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message:
        "3 validation errors detected: Value 'has space' at 'collectionId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-]+; " +
        "Value 'people/ana.jpg' at 'externalImageId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.\\-:]+; " +
        "Value '0' at 'maxFaces' failed to satisfy constraint: Member must have value greater than or equal to 1",
    });
  });

  test('an image with both bytes and an S3 object, or neither, is InvalidParameterException', async () => {
    const collectionId = await createCollection();
    for (const Image of [{ Bytes: syntheticPng([]), S3Object: { Bucket: rekognition.bucket, Name: 'a.png' } }, {}]) {
      await expect(
        rekognition.client.send(new IndexFacesCommand({ CollectionId: collectionId, Image })),
      ).rejects.toThrow(InvalidParameterException);
    }
  });

  test('a body that is not JSON and an unknown operation get the protocol errors, not a 500', async () => {
    const call = (target: string, body: string) =>
      fetch(rekognition.endpoint, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': target },
        body,
      });
    const malformed = await call('RekognitionService.IndexFaces', '{"CollectionId": ');
    const unknown = await call('RekognitionService.IndexEverything', '{}');

    expect([malformed.status, malformed.headers.get('x-amzn-errortype')]).toEqual([400, 'SerializationException']);
    expect([unknown.status, unknown.headers.get('x-amzn-errortype')]).toEqual([400, 'UnknownOperationException']);
  });

  test('indexing into a missing collection is ResourceNotFoundException', async () => {
    await expect(
      rekognition.client.send(
        new IndexFacesCommand({ CollectionId: newCollectionId(), Image: { Bytes: syntheticPng([]) } }),
      ),
    ).rejects.toThrow(ResourceNotFoundException);
  });
});

describe('ListFaces, DeleteFaces and search', () => {
  test('ListFaces pages through every face exactly once, up to 4096 a page', async () => {
    const collectionId = await createCollection();
    const faces = Array.from({ length: 25 }, (_, i) => ({
      person: `p${i}`,
      box: [(i % 5) * 0.2, Math.floor(i / 5) * 0.2, 0.1, 0.1] as [number, number, number, number],
    }));
    const indexed = await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { S3Object: await rekognition.putImage(`photos/${randomUUID()}.png`, faces) },
      }),
    );
    const indexedIds = indexed.FaceRecords?.map((record) => record.Face?.FaceId).sort();

    const listed: string[] = [];
    let NextToken: string | undefined;
    let pages = 0;
    do {
      const page = await rekognition.client.send(
        new ListFacesCommand({ CollectionId: collectionId, MaxResults: 10, NextToken }),
      );
      listed.push(...(page.Faces?.map((face) => face.FaceId ?? '') ?? []));
      expect(page.FaceModelVersion).toBe('7.0');
      NextToken = page.NextToken;
      pages += 1;
    } while (NextToken);

    expect(pages).toBe(3);
    expect(listed.sort()).toEqual(indexedIds);
    await expect(
      rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId, MaxResults: 4097 })),
    ).rejects.toMatchObject({
      name: 'ValidationException',
    });
  });

  test('ListFaces filters by FaceIds; DeleteFaces deletes what exists and reports what does not', async () => {
    const collectionId = await createCollection();
    const indexed = await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: {
          Bytes: syntheticPng([
            { person: 'a', box: [0.1, 0.1, 0.3, 0.3] },
            { person: 'b', box: [0.5, 0.5, 0.3, 0.3] },
          ]),
        },
      }),
    );
    const [first, second] = indexed.FaceRecords?.map((record) => record.Face?.FaceId ?? '') ?? [];
    const missing = randomUUID();

    const filtered = await rekognition.client.send(
      new ListFacesCommand({ CollectionId: collectionId, FaceIds: [first ?? ''] }),
    );
    expect(filtered.Faces?.map((face) => face.FaceId)).toEqual([first]);

    const deleted = await rekognition.client.send(
      new DeleteFacesCommand({ CollectionId: collectionId, FaceIds: [first ?? '', missing] }),
    );
    expect(deleted.DeletedFaces).toEqual([first]);
    expect(deleted.UnsuccessfulFaceDeletions).toEqual([{ FaceId: missing, Reasons: ['FACE_NOT_FOUND'] }]);
    const remaining = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId }));
    expect(remaining.Faces?.map((face) => face.FaceId)).toEqual([second]);
  });

  test('SearchFaces and SearchFacesByImage find the same person in another photo, not strangers', async () => {
    const collectionId = await createCollection();
    const index = (faces: Parameters<typeof syntheticPng>[0]) =>
      rekognition.client.send(
        new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng(faces) } }),
      );
    const first = await index([{ person: 'dana', box: [0.1, 0.1, 0.3, 0.3] }]);
    const again = await index([{ person: 'dana', box: [0.4, 0.2, 0.35, 0.3] }]);
    await index([{ person: 'eli', box: [0.1, 0.1, 0.3, 0.3] }]);
    const danaFirst = first.FaceRecords?.[0]?.Face?.FaceId ?? '';
    const danaAgain = again.FaceRecords?.[0]?.Face?.FaceId;

    const byFace = await rekognition.client.send(
      new SearchFacesCommand({ CollectionId: collectionId, FaceId: danaFirst }),
    );
    expect(byFace.FaceMatches?.map((match) => match.Face?.FaceId)).toEqual([danaAgain]);
    expect(byFace.FaceMatches?.[0]?.Similarity).toBeGreaterThan(95);

    await expect(
      rekognition.client.send(new SearchFacesCommand({ CollectionId: collectionId, FaceId: randomUUID() })),
    ).rejects.toThrow(InvalidParameterException);
    const byImage = await rekognition.client.send(
      new SearchFacesByImageCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng([{ person: 'dana', box: [0.2, 0.2, 0.3, 0.3] }]) },
      }),
    );
    expect(byImage.FaceMatches?.map((match) => match.Face?.FaceId).sort()).toEqual([danaFirst, danaAgain].sort());
  });
});
