import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
  ListFacesCommand,
  ListUsersCommand,
  RekognitionClient,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/activities/aws-clients';
import {
  createRekognitionActivities,
  type MigrateUserInput,
  type MigrateUserResult,
  type ReindexImageInput,
  type ReindexImageResult,
  type ReindexOptions,
} from '../../src/activities/rekognition';
import { type Config, loadConfig } from '../../src/domain/config';
import { ReasonCode } from '../../src/domain/reasons';
import { useLocalStack } from '../helpers/local-stack';
import { activityEnvironment } from '../helpers/activity-environment';

let aws: AwsClients;
let config: Config;
let rekognitionEndpoint: string;
let collectionId: string;

const options: ReindexOptions = { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' };

beforeAll(() => {
  rekognitionEndpoint = useLocalStack().AWS_ENDPOINT_URL_REKOGNITION ?? '';
  config = loadConfig();
  aws = createAwsClients(config);
});

afterAll(() => {
  destroyAwsClients(aws);
});

beforeEach(async () => {
  collectionId = `reindex-${randomUUID()}`;
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: collectionId }));
});

afterEach(async () => {
  await aws.rekognition.send(new DeleteCollectionCommand({ CollectionId: collectionId }));
});

const faceId = (n: number) => `${String(n).padStart(8, '0')}-aaaa-bbbb-cccc-dddddddddddd`;

/** Puts a synthetic photo of these faces in S3 and returns the record the old collection would have. */
async function photo(faces: DeclaredFace[], oldFaces: DeclaredFace[] = faces): Promise<ReindexImageInput['record']> {
  const Key = `photos/${randomUUID()}.png`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: syntheticPng(faces) }));
  return {
    Bucket: config.bucket,
    Key,
    ExternalImageId: 'person',
    Faces: oldFaces.map((face, i) => ({
      FaceId: faceId(i + 1),
      ImageId: 'old-image',
      BoundingBoxes: { Left: face.box[0], Top: face.box[1], Width: face.box[2], Height: face.box[3] },
    })),
  };
}

function reindex(input: Partial<ReindexImageInput> & Pick<ReindexImageInput, 'record'>, rekognition = aws.rekognition) {
  const { reindexImage } = createRekognitionActivities({ rekognition, s3: aws.s3, config });
  return activityEnvironment().run<[ReindexImageInput], ReindexImageResult, typeof reindexImage>(reindexImage, {
    runId: `run-${randomUUID()}`,
    recordIndex: 0,
    sourceCollectionId: 'faces-v6',
    targetCollectionId: collectionId,
    options,
    ...input,
  });
}

async function facesInTarget(): Promise<string[]> {
  const { Faces = [] } = await aws.rekognition.send(new ListFacesCommand({ CollectionId: collectionId }));
  return Faces.map((face) => face.FaceId ?? '').sort();
}

const ana: DeclaredFace = { person: 'ana', box: [0.1, 0.1, 0.3, 0.3] };
const bo: DeclaredFace = { person: 'bo', box: [0.6, 0.5, 0.25, 0.3] };

test('a face found again becomes one result row, and the target holds exactly that face', async () => {
  const outcome = await reindex({ record: await photo([ana]) });

  expect(outcome.review).toEqual([]);
  expect(outcome.results).toHaveLength(1);
  expect(outcome.results[0]).toMatchObject({ OldFaceId: faceId(1), CollectionId: collectionId, FaceModelVersion: '7.0' });
  expect(outcome.results[0]?.IoU).toBeGreaterThan(0.5);
  expect(await facesInTarget()).toEqual([outcome.results[0]?.FaceId]);
});

test('a retried attempt reuses the first indexing: same face, nothing indexed twice', async () => {
  const input = { runId: `run-${randomUUID()}`, recordIndex: 7, record: await photo([ana]) };

  const first = await reindex(input);
  const retried = await reindex(input);

  expect(first.reusedEarlierIndexing).toBe(false);
  expect(retried.reusedEarlierIndexing).toBe(true);
  expect(retried.results.map((row) => row.FaceId)).toEqual(first.results.map((row) => row.FaceId));
  expect(await facesInTarget()).toHaveLength(1);
});

test('a face nobody had is deleted from the target by default, and kept when asked', async () => {
  const deleted = await reindex({ record: await photo([ana, bo], [ana]) });
  expect(deleted.unmatchedNewFaces).toHaveLength(1);
  expect(await facesInTarget()).toEqual([deleted.results[0]?.FaceId]);

  const kept = await reindex({ record: await photo([ana, bo], [ana]), options: { ...options, unmatched: 'keep' } });
  expect(await facesInTarget()).toEqual(
    [deleted.results[0]?.FaceId, kept.results[0]?.FaceId, kept.unmatchedNewFaces[0]?.FaceId].sort(),
  );
});

test('an image where the new model finds no face sends its old faces to review', async () => {
  const outcome = await reindex({ record: await photo([], [ana, bo]) });

  expect(outcome.results).toEqual([]);
  expect(outcome.review.map((item) => item.reason)).toEqual([ReasonCode.NoFaceDetected, ReasonCode.NoFaceDetected]);
  expect(await facesInTarget()).toEqual([]);
});

test('a missing image fails for good with IMAGE_NOT_FOUND', async () => {
  const record = { ...(await photo([ana])), Key: 'photos/never-uploaded.png' };
  const failure = reindex({ record });

  await expect(failure).rejects.toBeInstanceOf(ApplicationFailure);
  await expect(failure).rejects.toMatchObject({ type: ReasonCode.ImageNotFound, nonRetryable: true });
});

test('throttling stays an ordinary, retryable error', async () => {
  const admin = (body: unknown) => fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  const unretried = new RekognitionClient({ region: config.aws.region, maxAttempts: 1 });
  await admin({ quotas: { IndexFaces: { tps: 0.001, burst: 1 } } });
  try {
    const record = await photo([ana]);
    await reindex({ record, recordIndex: 1 }, unretried);
    const failure = reindex({ record, recordIndex: 2 }, unretried);

    await expect(failure).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    await expect(failure).rejects.not.toBeInstanceOf(ApplicationFailure);
  } finally {
    await admin({ quotas: {} });
    unretried.destroy();
  }
});

describe('migrateUser', () => {
  async function indexPerson(person: string, count: number): Promise<string[]> {
    const faces: DeclaredFace[] = Array.from({ length: count }, (_, i) => ({
      person,
      box: [(i % 10) * 0.1, Math.floor(i / 10) * 0.1, 0.08, 0.08],
    }));
    const ids: string[] = [];
    for (let start = 0; start < faces.length; start += 100) {
      const indexed = await aws.rekognition.send(
        new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng(faces.slice(start, start + 100)) }, QualityFilter: 'NONE' }),
      );
      ids.push(...(indexed.FaceRecords ?? []).map((record) => record.Face?.FaceId ?? ''));
    }
    return ids;
  }

  function migrate(input: Omit<MigrateUserInput, 'targetCollectionId'>) {
    const { migrateUser } = createRekognitionActivities({ rekognition: aws.rekognition, s3: aws.s3, config });
    return activityEnvironment().run<[MigrateUserInput], MigrateUserResult, typeof migrateUser>(migrateUser, {
      ...input,
      targetCollectionId: collectionId,
    });
  }

  test('the user is created with its faces, and a retry of the same run repeats nothing', async () => {
    const faceIds = await indexPerson('ana', 2);
    const input = { runId: `run-${randomUUID()}`, userId: 'user-ana', faceIds };

    const first = await migrate(input);
    const retried = await migrate(input);

    expect(first).toEqual({ associated: faceIds, refused: [] });
    expect(retried).toEqual(first);
    const { Users } = await aws.rekognition.send(new ListUsersCommand({ CollectionId: collectionId }));
    expect(Users).toEqual([{ UserId: 'user-ana', UserStatus: 'ACTIVE' }]);
    const { Faces = [] } = await aws.rekognition.send(new ListFacesCommand({ CollectionId: collectionId, UserId: 'user-ana' }));
    expect(Faces.map((face) => face.FaceId).sort()).toEqual([...faceIds].sort());
  });

  test('a user already in the target from an earlier run gets the new faces too', async () => {
    const [earlier, later] = [await indexPerson('bo', 1), await indexPerson('bo', 1)];
    await migrate({ runId: `run-${randomUUID()}`, userId: 'user-bo', faceIds: earlier });

    const result = await migrate({ runId: `run-${randomUUID()}`, userId: 'user-bo', faceIds: later });

    expect(result.associated).toEqual(later);
  });

  test('a user with more than 100 faces fails for good with USER_FACE_LIMIT after the first 100', async () => {
    const faceIds = await indexPerson('cy', 101);
    const failure = migrate({ runId: `run-${randomUUID()}`, userId: 'user-cy', faceIds });

    await expect(failure).rejects.toMatchObject({ type: ReasonCode.UserFaceLimit, nonRetryable: true });
    const { Faces = [] } = await aws.rekognition.send(new ListFacesCommand({ CollectionId: collectionId, UserId: 'user-cy', MaxResults: 4096 }));
    expect(Faces).toHaveLength(100);
  });
});
