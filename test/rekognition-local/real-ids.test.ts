/**
 * The ids and limits of the real service that the project's exactly-once promise depends on:
 * ImageIds from the image's bytes, FaceIds answered again for a face indexed again under the same
 * ExternalImageId (`reuse`, as AWS) or new ones (`fresh`), the collection's face limit, and the
 * smallest image the service takes.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteFacesCommand,
  DescribeCollectionCommand,
  IndexFacesCommand,
  InvalidParameterException,
  ListFacesCommand,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';

let rekognition: RunningRekognition;

beforeAll(async () => {
  rekognition = await startRekognitionLocal();
});

afterAll(async () => {
  await rekognition.stop();
});

afterEach(async () => {
  await rekognition.admin('PUT', '/_admin/settings', { faceIds: 'reuse', maxFacesPerCollection: 20_000_000 });
});

async function newCollection(): Promise<string> {
  const CollectionId = `faces-${randomUUID()}`;
  await rekognition.client.send(new CreateCollectionCommand({ CollectionId }));
  return CollectionId;
}

const twoPeople = () => [
  { person: `ana-${randomUUID()}`, box: [0.1, 0.1, 0.3, 0.3] as [number, number, number, number] },
  { person: `bo-${randomUUID()}`, box: [0.55, 0.5, 0.3, 0.3] as [number, number, number, number] },
];

async function index(CollectionId: string, image: { Bucket: string; Name: string }, ExternalImageId?: string) {
  const response = await rekognition.client.send(
    new IndexFacesCommand({ CollectionId, Image: { S3Object: image }, ExternalImageId }),
  );
  return (response.FaceRecords ?? []).map(({ Face }) => ({ FaceId: Face?.FaceId ?? '', ImageId: Face?.ImageId ?? '' }));
}

const faceCount = async (CollectionId: string) =>
  (await rekognition.client.send(new DescribeCollectionCommand({ CollectionId }))).FaceCount;

test('the ImageId is a version-5 UUID of the bytes: the same bytes under two keys give one ImageId, other bytes another', async () => {
  const collectionId = await newCollection();
  const faces = twoPeople();
  const first = await rekognition.putImage(`photos/${randomUUID()}.png`, faces);
  const copy = await rekognition.putImage(`photos/${randomUUID()}.png`, faces);
  const other = await rekognition.putImage(`photos/${randomUUID()}.png`, [faces[0]!]);

  const [a, b, c] = [
    await index(collectionId, first),
    await index(collectionId, copy),
    await index(collectionId, other),
  ];

  expect(a[0]?.ImageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(new Set([...a, ...b].map((face) => face.ImageId)).size).toBe(1);
  expect(c[0]?.ImageId).not.toBe(a[0]?.ImageId);
  // No ExternalImageId: every call indexes new faces, whatever the behaviour.
  expect(new Set([...a, ...b, ...c].map((face) => face.FaceId)).size).toBe(5);
});

test('reuse: the same image under the same ExternalImageId answers the FaceIds held and stores nothing new', async () => {
  const collectionId = await newCollection();
  const image = await rekognition.putImage(`photos/${randomUUID()}.png`, twoPeople());

  const first = await index(collectionId, image, 'photo-1');
  const again = await index(collectionId, image, 'photo-1');
  const otherId = await index(collectionId, image, 'photo-2');

  expect(again.map((face) => face.FaceId).sort()).toEqual(first.map((face) => face.FaceId).sort());
  expect(otherId.map((face) => face.FaceId).some((faceId) => first.some((face) => face.FaceId === faceId))).toBe(false);
  expect(await faceCount(collectionId)).toBe(4);
});

test('reuse: a face deleted since is indexed again under a new FaceId, the other keeps its own', async () => {
  const collectionId = await newCollection();
  const image = await rekognition.putImage(`photos/${randomUUID()}.png`, twoPeople());
  const [kept, deleted] = await index(collectionId, image, 'photo-1');
  await rekognition.client.send(new DeleteFacesCommand({ CollectionId: collectionId, FaceIds: [deleted!.FaceId] }));

  const again = (await index(collectionId, image, 'photo-1')).map((face) => face.FaceId);

  expect(again).toContain(kept!.FaceId);
  expect(again).not.toContain(deleted!.FaceId);
  expect(again).toHaveLength(2);
  expect(await faceCount(collectionId)).toBe(2);
});

test('fresh: the same image under the same ExternalImageId gets new FaceIds every time, under the same ImageId', async () => {
  const settings = (await rekognition.admin('PUT', '/_admin/settings', { faceIds: 'fresh' })) as { faceIds: string };
  expect(settings.faceIds).toBe('fresh');
  const collectionId = await newCollection();
  const image = await rekognition.putImage(`photos/${randomUUID()}.png`, twoPeople());

  const first = await index(collectionId, image, 'photo-1');
  const again = await index(collectionId, image, 'photo-1');

  expect(again.some((face) => first.some((earlier) => earlier.FaceId === face.FaceId))).toBe(false);
  expect(new Set([...first, ...again].map((face) => face.ImageId)).size).toBe(1);
  expect(await faceCount(collectionId)).toBe(4);
});

test('a collection at its face limit refuses IndexFaces with ServiceQuotaExceededException and stores nothing', async () => {
  await rekognition.admin('PUT', '/_admin/settings', { maxFacesPerCollection: 3 });
  const collectionId = await newCollection();
  await index(collectionId, await rekognition.putImage(`photos/${randomUUID()}.png`, twoPeople()));

  const refused = index(collectionId, await rekognition.putImage(`photos/${randomUUID()}.png`, twoPeople()));

  await expect(refused).rejects.toBeInstanceOf(ServiceQuotaExceededException);
  expect(await faceCount(collectionId)).toBe(2);
  // Faces indexed again under reuse add nothing, so they still fit.
  await expect(
    index(collectionId, await rekognition.putImage(`photos/${randomUUID()}.png`, [twoPeople()[0]!])),
  ).resolves.toHaveLength(1);
});

test('an image under 80 pixels a side is InvalidParameterException; 80 by 80 is indexed', async () => {
  const collectionId = await newCollection();
  const face = [{ person: 'ana', box: [0.2, 0.2, 0.5, 0.5] as [number, number, number, number] }];
  const put = async (side: number) => {
    const Key = `photos/${randomUUID()}.png`;
    await rekognition.s3.send(
      new PutObjectCommand({ Bucket: rekognition.bucket, Key, Body: syntheticPng(face, side) }),
    );
    return { Bucket: rekognition.bucket, Name: Key };
  };

  await expect(index(collectionId, await put(79))).rejects.toBeInstanceOf(InvalidParameterException);
  await expect(
    rekognition.client.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng(face, 40) } }),
    ),
  ).rejects.toBeInstanceOf(InvalidParameterException);
  await expect(index(collectionId, await put(80))).resolves.toHaveLength(1);
  const { Faces = [] } = await rekognition.client.send(new ListFacesCommand({ CollectionId: collectionId }));
  expect(Faces).toHaveLength(1);
});

test('the face-id behaviour is set at start by REKOGNITION_LOCAL_FACE_IDS and shown by the admin settings', async () => {
  expect(await rekognition.admin('GET', '/_admin/settings')).toMatchObject({
    faceIds: 'reuse',
    maxFacesPerCollection: 20_000_000,
  });
  const fresh = await startRekognitionLocal({ faceIds: 'fresh' });
  try {
    expect(await fresh.admin('GET', '/_admin/settings')).toMatchObject({ faceIds: 'fresh' });
  } finally {
    await fresh.stop();
  }
  expect(await rekognition.admin('PUT', '/_admin/settings', { faceIds: 'sometimes' })).toHaveProperty('error');
});
