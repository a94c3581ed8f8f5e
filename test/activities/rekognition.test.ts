import { randomUUID } from 'node:crypto';
import {
  CreateCollectionCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
  ListCollectionsCommand,
  ListFacesCommand,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/activities/aws-clients';
import { createLedger } from '../../src/activities/ledger';
import {
  createRekognitionActivities,
  type PrepareTargetInput,
  type ReindexImageInput,
  type ReindexImageResult,
} from '../../src/activities/rekognition';
import type { ReindexOptions } from '../../src/shared';
import { type Config, loadConfig } from '../../src/domain/config';
import { ReasonCode } from '../../src/domain/reasons';
import { useLocalStack } from '../helpers/local-stack';
import { activityEnvironment } from '../helpers/activity-environment';
import { indexFacesCalls } from '../helpers/runs';

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

function reindex(input: Partial<ReindexImageInput> & Pick<ReindexImageInput, 'record'>, attempt = 1) {
  const { reindexImage } = createRekognitionActivities({ rekognition: aws.rekognition, indexFacesClient: aws.indexFaces, s3: aws.s3, config });
  return activityEnvironment({ attempt }).run<[ReindexImageInput], ReindexImageResult, typeof reindexImage>(reindexImage, {
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
  const callsBefore = await indexFacesCalls();
  const retried = await reindex(input, 2);

  expect(await indexFacesCalls()).toBe(callsBefore);
  expect(first.reusedEarlierIndexing).toBe(false);
  expect(retried.reusedEarlierIndexing).toBe(true);
  expect(retried.results.map((row) => row.FaceId)).toEqual(first.results.map((row) => row.FaceId));
  expect(await facesInTarget()).toHaveLength(1);
});

test('a later run of the same records file reuses the indexing instead of indexing again', async () => {
  const record = await photo([ana]);
  const first = await reindex({ runId: `run-${randomUUID()}`, record });
  const callsBefore = await indexFacesCalls();

  const rerun = await reindex({ runId: `run-${randomUUID()}`, record });

  expect(await indexFacesCalls()).toBe(callsBefore);
  expect(rerun.reusedEarlierIndexing).toBe(true);
  expect(rerun.results.map((row) => row.FaceId)).toEqual(first.results.map((row) => row.FaceId));
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

test('an empty image fails for good with IMAGE_EMPTY, where IndexFaces says only invalid format', async () => {
  const record = await photo([ana]);
  await aws.s3.send(new PutObjectCommand({ Bucket: record.Bucket, Key: record.Key, Body: Buffer.alloc(0) }));

  const failure = reindex({ record });

  await expect(failure).rejects.toMatchObject({
    type: ReasonCode.ImageEmpty,
    nonRetryable: true,
    message: expect.stringMatching(/; the object is empty \(0 bytes\)$/) as string,
  });
});

test('a throttled IndexFaces fails its attempt after one call, as an ordinary retryable error', async () => {
  const admin = (body: unknown) => fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  await admin({ quotas: { IndexFaces: { tps: 0.001, burst: 1 } } });
  try {
    await reindex({ record: await photo([ana]) });
    const callsBefore = await indexFacesCalls();
    const failure = reindex({ record: await photo([bo]) });

    await expect(failure).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    await expect(failure).rejects.not.toBeInstanceOf(ApplicationFailure);
    // The SDK did not retry: the retry is Temporal's, through the task queue's rate.
    expect((await indexFacesCalls()) - callsBefore).toBe(1);
  } finally {
    await admin({ quotas: {} });
  }
});

test('a first attempt told the image was not indexed calls IndexFaces at once; an indexing recorded since still wins', async () => {
  const input = { runId: `run-${randomUUID()}`, recordIndex: 4, record: await photo([ana]) };
  const first = await reindex(input);
  const callsBefore = await indexFacesCalls();

  // The batch looked before the first indexing was recorded: this attempt indexes the image again.
  const late = await reindex({ ...input, indexedBefore: false });

  expect(await indexFacesCalls()).toBe(callsBefore + 1);
  expect(late.reusedEarlierIndexing).toBe(true);
  expect(late.results.map((row) => row.FaceId)).toEqual(first.results.map((row) => row.FaceId));
  expect(await facesInTarget()).toEqual([first.results[0]?.FaceId]);
});

test('two overlapping attempts on one image leave one indexing: the loser deletes its faces', async () => {
  const input = { runId: `run-${randomUUID()}`, recordIndex: 3, record: await photo([ana]) };

  const [one, other] = await Promise.all([reindex(input), reindex(input)]);

  expect(one.results.map((row) => row.FaceId)).toEqual(other.results.map((row) => row.FaceId));
  expect([one.reusedEarlierIndexing, other.reusedEarlierIndexing].sort()).toEqual([false, true]);
  expect(await facesInTarget()).toEqual([one.results[0]?.FaceId]);
});

describe('reconcile', () => {
  const orphanGraceMs = 1_500;
  function reconcile() {
    const activities = createRekognitionActivities({ rekognition: aws.rekognition, indexFacesClient: aws.indexFaces, s3: aws.s3, config, orphanGraceMs });
    return activityEnvironment().run(activities.reconcile, collectionId);
  }

  test('deletes the faces of an indexing that crashed before it was recorded, and only those', async () => {
    const migrated = await reindex({ record: await photo([ana, bo]) });
    // What a worker dying right after IndexFaces leaves behind: faces no ledger entry names.
    const crashed = await aws.rekognition.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng([ana]) }, QualityFilter: 'NONE' }),
    );

    const reconciled = await reconcile();

    expect(reconciled).toEqual({ facesChecked: 3, orphansDeleted: 1 });
    expect(await facesInTarget()).toEqual(migrated.results.map((row) => row.FaceId).sort());
    expect(crashed.FaceRecords).toHaveLength(1);
    expect(await reconcile()).toEqual({ facesChecked: 2, orphansDeleted: 0 });
  });

  test('keeps a face another run is indexing right now: its image is recorded within the grace', async () => {
    const indexing = await aws.rekognition.send(
      new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng([ana]) }, QualityFilter: 'NONE' }),
    );
    const imageId = indexing.FaceRecords?.[0]?.Face?.ImageId ?? '';
    // The other run's attempt records the image a moment after reconcile first looked.
    const recorded = new Promise((resolve) => setTimeout(resolve, orphanGraceMs / 3)).then(() =>
      createLedger(aws.s3, config.bucket).recordImage(collectionId, imageId, { runId: 'other-run', recordIndex: 0 }),
    );

    const reconciled = await reconcile();
    await recorded;

    expect(reconciled).toEqual({ facesChecked: 1, orphansDeleted: 0 });
    expect(await facesInTarget()).toEqual([indexing.FaceRecords?.[0]?.Face?.FaceId]);
  });
});

describe('prepareTarget', () => {
  const admin = (body: unknown) => fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  let oldCollection: string;
  let newCollection: string;

  function prepare(input: Partial<PrepareTargetInput>) {
    const activities = createRekognitionActivities({ rekognition: aws.rekognition, indexFacesClient: aws.indexFaces, s3: aws.s3, config });
    return activityEnvironment().run(activities.prepareTarget, {
      runId: `run-${randomUUID()}`,
      targetCollectionId: newCollection,
      sourceCollectionId: oldCollection,
      force: false,
      ...input,
    });
  }

  async function collectionExists(CollectionId: string): Promise<boolean> {
    const { CollectionIds = [] } = await aws.rekognition.send(new ListCollectionsCommand({}));
    return CollectionIds.includes(CollectionId);
  }

  beforeEach(async () => {
    oldCollection = `old-${randomUUID()}`;
    newCollection = `new-${randomUUID()}`;
    await admin({ currentFaceModelVersion: '6.0' });
    try {
      await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: oldCollection }));
    } finally {
      await admin({ currentFaceModelVersion: '7.0' });
    }
  });

  afterEach(async () => {
    for (const CollectionId of [oldCollection, newCollection]) {
      await aws.rekognition.send(new DeleteCollectionCommand({ CollectionId })).catch(() => undefined);
    }
  });

  test('creates a missing target on the newest model and reads both versions', async () => {
    expect(await prepare({})).toEqual({ targetFaceModelVersion: '7.0', sourceFaceModelVersion: '6.0', created: true });
    expect(await prepare({})).toEqual({ targetFaceModelVersion: '7.0', sourceFaceModelVersion: '6.0', created: false });
  });

  test('refuses a target whose model is not newer, and removes the collection it made for nothing', async () => {
    const failure = prepare({ sourceCollectionId: collectionId });

    await expect(failure).rejects.toMatchObject({ type: ReasonCode.TargetModelNotNewer, nonRetryable: true });
    expect(await collectionExists(newCollection)).toBe(false);
    await expect(prepare({ sourceCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: true });
  });

  test('refuses an existing target holding faces it did not index, which reconcile would delete', async () => {
    await aws.rekognition.send(new IndexFacesCommand({ CollectionId: collectionId, Image: { Bytes: syntheticPng([ana]) }, QualityFilter: 'NONE' }));

    await expect(prepare({ targetCollectionId: collectionId, force: true })).rejects.toMatchObject({
      type: ReasonCode.TargetNotOwned,
      nonRetryable: true,
    });
    expect(await facesInTarget()).toHaveLength(1);
  });

  test('takes an existing empty target, and keeps taking it once it holds the run\'s faces', async () => {
    await expect(prepare({ targetCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: false });
    await reindex({ record: await photo([ana]) });

    await expect(prepare({ targetCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: false });
  });

  test('a source collection that does not exist fails for good', async () => {
    await expect(prepare({ sourceCollectionId: 'no-such-collection' })).rejects.toMatchObject({
      type: ReasonCode.SourceCollectionNotFound,
      nonRetryable: true,
    });
  });
});
