import { randomUUID } from 'node:crypto';
import {
  AccessDeniedException,
  CreateCollectionCommand,
  DeleteCollectionCommand,
  RekognitionClient,
  DescribeCollectionCommand,
  IndexFacesCommand,
  ListCollectionsCommand,
  ListFacesCommand,
  ListTagsForResourceCommand,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { createLedger } from '../../src/stores/ledger';
import {
  createRekognitionActivities,
  type PrepareTargetInput,
  type ReconcileProgress,
  type ReindexImageInput,
  type ReindexImageResult,
} from '../../src/activities/rekognition';
import { MIGRATION_TARGET_TAG, type ReindexOptions } from '../../src/shared';
import { type Config, loadConfig } from '../../src/domain/config';
import { ReasonCode } from '../../src/domain/reasons';
import { useLocalStack } from '../../harness/local-stack';
import { activityEnvironment } from '../../harness/activity-environment';
import { eventually, indexFacesCalls, rekognitionAdmin } from '../../harness/runs';

let aws: AwsClients;
let config: Config;
let rekognitionEndpoint: string;
let collectionId: string;

const options: ReindexOptions = { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' };

type OutcomeAnswering = (input: ReindexImageInput) => Promise<ReindexImageResult>;

/** reindexImage as it answers an input that does not ask it to publish: with the outcome itself. */
const answeringOutcome =
  (reindexImage: ReturnType<typeof createRekognitionActivities>['reindexImage']): OutcomeAnswering =>
  (input) =>
    reindexImage(input) as Promise<ReindexImageResult>;

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
  const { reindexImage } = createRekognitionActivities({
    rekognition: aws.rekognition,
    indexFacesClient: aws.indexFaces,
    s3: aws.s3,
    config,
  });
  return activityEnvironment({ attempt }).run<[ReindexImageInput], ReindexImageResult, OutcomeAnswering>(
    answeringOutcome(reindexImage),
    {
      runId: `run-${randomUUID()}`,
      recordIndex: 0,
      sourceCollectionId: 'faces-v6',
      targetCollectionId: collectionId,
      options,
      ...input,
    },
  );
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
  expect(outcome.results[0]).toMatchObject({
    OldFaceId: faceId(1),
    CollectionId: collectionId,
    FaceModelVersion: '7.0',
  });
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

test('an image asked to publish sends its rows and review items itself and answers with their tally; a retry after a failed send sends the same', async () => {
  const published: ReindexImageResult[] = [];
  let sends = 0;
  const { reindexImage } = createRekognitionActivities({
    rekognition: aws.rekognition,
    indexFacesClient: aws.indexFaces,
    s3: aws.s3,
    config,
    publishOutcome: (outcome) => {
      sends += 1;
      if (sends === 1) return Promise.reject(new Error('SQS answered 500'));
      published.push(outcome);
      return Promise.resolve();
    },
  });
  const record = await photo([ana], [ana, bo]);
  const input: ReindexImageInput = {
    runId: `run-${randomUUID()}`,
    recordIndex: 3,
    record,
    sourceCollectionId: undefined,
    targetCollectionId: collectionId,
    options,
    publish: true,
  };

  await expect(activityEnvironment({ attempt: 1 }).run(reindexImage, input)).rejects.toThrow('SQS answered 500');
  const tally = await activityEnvironment({ attempt: 2, heartbeatDetails: { faultSinceMs: Date.now() } }).run(
    reindexImage,
    input,
  );

  expect(tally).toEqual({
    matched: 1,
    reviewByReason: { [ReasonCode.IouBelowThreshold]: 1 },
    unmatchedNew: 0,
    reusedEarlierIndexing: true,
  });
  expect(published).toHaveLength(1);
  expect(published[0]?.results.map((row) => row.OldFaceId)).toEqual([faceId(1)]);
  expect(published[0]?.review.map((item) => [item.reason, item.face?.FaceId])).toEqual([
    [ReasonCode.IouBelowThreshold, faceId(2)],
  ]);
  expect(await facesInTarget()).toEqual(published[0]?.results.map((row) => row.FaceId));
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

test("a later run does not reuse an indexing whose face was deleted as a duplicate row's since: it indexes the image again", async () => {
  const record = await photo([ana]);
  const first = await reindex({ runId: `run-${randomUUID()}`, record });
  const [row] = first.results;
  if (!row) throw new Error('the first run matched nothing');
  const { deleteDuplicateFaces } = createRekognitionActivities({
    rekognition: aws.rekognition,
    indexFacesClient: aws.indexFaces,
    s3: aws.s3,
    config,
  });
  // The drain refused this row as a second row of its old face in the run; its face left the target.
  await activityEnvironment().run(deleteDuplicateFaces, [
    {
      row,
      heldBy: { FaceId: 'held', MigratedAt: row.MigratedAt },
      surplusFaceId: row.FaceId,
      review: {
        reason: ReasonCode.DuplicateFaceId,
        detail: 'a second row of its old face',
        runId: row.RunId,
        Bucket: row.Bucket,
        Key: row.Key,
        ExternalImageId: row.ExternalImageId,
        face: undefined,
      },
      receiptHandles: [],
    },
  ]);
  const callsBefore = await indexFacesCalls();

  const rerun = await reindex({ runId: `run-${randomUUID()}`, record });

  expect(await indexFacesCalls()).toBe(callsBefore + 1);
  expect(rerun.reusedEarlierIndexing).toBe(false);
  expect(rerun.results.map((result) => result.FaceId)).not.toContain(row.FaceId);
  expect(await facesInTarget()).toEqual(rerun.results.map((result) => result.FaceId));
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

test('an image under 80 pixels a side fails for good with IMAGE_TOO_SMALL, where IndexFaces says only invalid parameters', async () => {
  const record = await photo([ana]);
  await aws.s3.send(new PutObjectCommand({ Bucket: record.Bucket, Key: record.Key, Body: syntheticPng([ana], 64) }));

  const failure = reindex({ record });

  await expect(failure).rejects.toMatchObject({
    type: ReasonCode.ImageTooSmall,
    nonRetryable: true,
    message: expect.stringMatching(
      /: Request has invalid parameters; the image is 64x64 pixels: under Rekognition's minimum of 80 pixels a side$/,
    ) as string,
  });
});

test('a full target fails the image for good with TARGET_COLLECTION_FULL, which no image can cure', async () => {
  const record = await photo([ana]);
  await fetch(`${rekognitionEndpoint}/_admin/settings`, {
    method: 'PUT',
    body: JSON.stringify({ maxFacesPerCollection: 1 }),
  });
  try {
    await reindex({ record: await photo([bo]) });
    await expect(reindex({ record })).rejects.toMatchObject({
      type: ReasonCode.TargetCollectionFull,
      nonRetryable: true,
      message: expect.stringMatching(new RegExp(`^the target collection ${collectionId} is full: `)) as string,
    });
  } finally {
    await fetch(`${rekognitionEndpoint}/_admin/settings`, {
      method: 'PUT',
      body: JSON.stringify({ maxFacesPerCollection: 20_000_000 }),
    });
  }
});

test('a throttled IndexFaces fails its attempt after one call, as an ordinary retryable error', async () => {
  const admin = (body: unknown) =>
    fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
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

describe('attempts that end: retries bounded, cancellation obeyed', () => {
  const admin = (body: unknown) =>
    fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  const MINUTE = 60_000;

  afterEach(async () => {
    await admin({ quotas: {}, latency: {}, faultRate: 0 });
  });

  /** reindexImage as attempt `attempt`, handed the history earlier attempts heartbeated; the heartbeats it sends. */
  async function attemptWith(record: ReindexImageInput['record'], attempt: number, heartbeatDetails: unknown) {
    const { reindexImage } = createRekognitionActivities({
      rekognition: aws.rekognition,
      indexFacesClient: aws.indexFaces,
      s3: aws.s3,
      config,
    });
    const env = activityEnvironment({ attempt, heartbeatDetails });
    const heartbeats: unknown[] = [];
    env.on('heartbeat', (details: unknown) => heartbeats.push(details));
    const outcome = await env
      .run<[ReindexImageInput], ReindexImageResult, OutcomeAnswering>(answeringOutcome(reindexImage), {
        runId: `run-${randomUUID()}`,
        recordIndex: 0,
        record,
        sourceCollectionId: undefined,
        targetCollectionId: collectionId,
        options,
        retryForMs: 30 * MINUTE,
      })
      .then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: undefined, error }),
      );
    return { ...outcome, heartbeats };
  }

  test('a failing service is retried, and the first failure starts the clock the next attempts read', async () => {
    const record = await photo([ana]);
    await admin({ faultRate: 1 });
    const before = Date.now();

    const { error, heartbeats } = await attemptWith(record, 1, undefined);

    expect(error).toMatchObject({ name: 'InternalServerError' });
    expect(error).not.toBeInstanceOf(ApplicationFailure);
    const [history] = heartbeats as { faultSinceMs: number }[];
    expect(history?.faultSinceMs).toBeGreaterThanOrEqual(before);
  });

  test('an image still failing after --retry-minutes gives up for good with RETRIES_EXHAUSTED and its last error', async () => {
    const record = await photo([ana]);
    await admin({ faultRate: 1 });

    const { error } = await attemptWith(record, 17, { faultSinceMs: Date.now() - 31 * MINUTE });

    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: ReasonCode.RetriesExhausted, nonRetryable: true });
    expect((error as Error).message).toMatch(/after 17 attempts over 31 min; the last failed with InternalServerError/);
  });

  test('throttling never gives up, however long the image has failed, and starts the clock again', async () => {
    const record = await photo([ana]);
    await admin({ quotas: { IndexFaces: { tps: 0.0001, burst: 0.0001 } } });

    const { error, heartbeats } = await attemptWith(record, 40, { faultSinceMs: Date.now() - 3 * 60 * MINUTE });

    expect(error).toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    expect(error).not.toBeInstanceOf(ApplicationFailure);
    expect(heartbeats.at(-1)).toEqual({});
  });

  test('an attempt cancelled while IndexFaces answers slowly (timed out, its run paused) stops at once and records nothing after', async () => {
    const record = await photo([ana]);
    await admin({ latency: { IndexFaces: { medianMs: 3_000, p99Ms: 3_000 } } });
    const { reindexImage } = createRekognitionActivities({
      rekognition: aws.rekognition,
      indexFacesClient: aws.indexFaces,
      s3: aws.s3,
      config,
    });
    const env = activityEnvironment();
    const answeredBefore = await indexFacesAnswered();
    const callsBefore = await indexFacesCalls();
    const attempt = env.run<[ReindexImageInput], ReindexImageResult, OutcomeAnswering>(answeringOutcome(reindexImage), {
      runId: `run-${randomUUID()}`,
      recordIndex: 0,
      record,
      sourceCollectionId: undefined,
      targetCollectionId: collectionId,
      options,
    });
    // Cancelled once rekognition-local holds its IndexFaces call.
    await eventually(async () => (await indexFacesCalls()) > callsBefore);

    const cancelledAt = performance.now();
    env.cancel();

    await expect(attempt).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - cancelledAt).toBeLessThan(1_000);
    // Nothing is recorded even once the call the attempt gave up on has answered.
    await eventually(async () => (await indexFacesAnswered()) > answeredBefore);
    expect(await createLedger(aws.s3, config.bucket).findIndexing(collectionId, record, options)).toBeUndefined();
  });

  test('a retry after an attempt that ended without a word (its worker died) counts it as a failure, and says so at once', async () => {
    const record = await photo([ana]);
    const before = Date.now();

    const { result, heartbeats } = await attemptWith(record, 2, undefined);

    expect(result?.results).toHaveLength(1);
    expect((heartbeats[0] as { faultSinceMs: number }).faultSinceMs).toBeGreaterThanOrEqual(before);
  });
});

/** IndexFaces calls rekognition-local has answered, after their latency. */
async function indexFacesAnswered(): Promise<number> {
  const counters = (await rekognitionAdmin('counters', 'GET')) as Record<string, { succeeded: number }>;
  return counters.IndexFaces?.succeeded ?? 0;
}

const setFaceIds = (faceIds: string) =>
  fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify({ faceIds }) });
const stackFaceIds = async () =>
  ((await (await fetch(`${rekognitionEndpoint}/_admin/settings`)).json()) as { faceIds: string }).faceIds;

/** IndexFaces as reindexImage calls it, by a worker that dies before the ledger hears of it. */
async function indexedByACrashedAttempt(record: ReindexImageInput['record']): Promise<string[]> {
  const response = await aws.rekognition.send(
    new IndexFacesCommand({
      CollectionId: collectionId,
      Image: { S3Object: { Bucket: record.Bucket, Name: record.Key } },
      ExternalImageId: record.ExternalImageId,
    }),
  );
  return (response.FaceRecords ?? []).map(({ Face }) => Face?.FaceId ?? '');
}

describe.each(['reuse', 'fresh'] as const)('with FaceIds answered as %s', (faceIds) => {
  const orphanGraceMs = 1_500;
  function reconcile() {
    const activities = createRekognitionActivities({
      rekognition: aws.rekognition,
      indexFacesClient: aws.indexFaces,
      s3: aws.s3,
      config,
      orphanGraceMs,
    });
    return activityEnvironment().run<[string], ReconcileProgress, typeof activities.reconcile>(
      activities.reconcile,
      collectionId,
    );
  }
  const rowFaces = (outcome: ReindexImageResult) => outcome.results.map((row) => row.FaceId).sort();

  let before: string;

  beforeAll(async () => {
    before = await stackFaceIds();
    await setFaceIds(faceIds);
  });

  afterAll(async () => {
    await setFaceIds(before);
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

  test('two overlapping attempts on one image leave one indexing and one face', async () => {
    const input = { runId: `run-${randomUUID()}`, recordIndex: 3, record: await photo([ana]) };

    const [one, other] = await Promise.all([reindex(input), reindex(input)]);

    expect(one.results.map((row) => row.FaceId)).toEqual(other.results.map((row) => row.FaceId));
    expect([one.reusedEarlierIndexing, other.reusedEarlierIndexing]).toContain(true);
    expect(await facesInTarget()).toEqual([one.results[0]?.FaceId]);
  });

  test("a worker killed between IndexFaces and the ledger write leaves, after the retry and reconcile, exactly the row's faces", async () => {
    const input = { runId: `run-${randomUUID()}`, recordIndex: 1, record: await photo([ana, bo]) };
    const leftover = await indexedByACrashedAttempt(input.record);

    const retried = await reindex(input, 2);
    const reconciled = await reconcile();

    expect(await facesInTarget()).toEqual(rowFaces(retried));
    // The real service answers the retry with the faces the crashed attempt got: nothing is left over.
    expect(reconciled).toEqual({
      facesChecked: 2 + (faceIds === 'fresh' ? 2 : 0),
      orphansDeleted: faceIds === 'fresh' ? 2 : 0,
      unattributedKept: 0,
    });
    expect(rowFaces(retried).filter((face) => leftover.includes(face))).toHaveLength(faceIds === 'reuse' ? 2 : 0);
  });

  test('reconcile deletes the faces of a crashed attempt never retried, known by its ExternalImageId, and keeps faces it cannot attribute', async () => {
    const kept = await reindex({ record: await photo([ana]) });
    const cancelled = await photo([bo]);
    // The batch notes its ExternalImageIds before indexing; this record's only attempt died after IndexFaces.
    const externalImageId = `cancelled-${randomUUID()}`;
    await createLedger(aws.s3, config.bucket).recordExternalIds(collectionId, [externalImageId], 'run');
    await indexedByACrashedAttempt({ ...cancelled, ExternalImageId: externalImageId });
    const foreign = await aws.rekognition.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng([{ person: 'cy', box: [0.3, 0.3, 0.3, 0.3] }]) },
      }),
    );

    const reconciled = await reconcile();

    expect(reconciled).toEqual({ facesChecked: 3, orphansDeleted: 1, unattributedKept: 1 });
    expect(await facesInTarget()).toEqual([...rowFaces(kept), foreign.FaceRecords?.[0]?.Face?.FaceId ?? ''].sort());
  });

  test('reconcile keeps a face another run is indexing right now: its claim and record land within the grace', async () => {
    const record = await photo([ana]);
    const crashedLookalike = await indexedByACrashedAttempt(record);
    await createLedger(aws.s3, config.bucket).recordImage(collectionId, 'unrelated', {
      runId: 'other-run',
      recordIndex: 0,
    });
    // The other run's attempt records its indexing a moment after reconcile first looked.
    const finished = new Promise((resolve) => setTimeout(resolve, orphanGraceMs / 3)).then(() => reindex({ record }));

    const reconciled = await reconcile();
    const outcome = await finished;

    expect(reconciled.orphansDeleted).toBe(0);
    expect(await facesInTarget()).toEqual(
      faceIds === 'reuse' ? rowFaces(outcome) : [...crashedLookalike, ...rowFaces(outcome)].sort(),
    );
  });

  describe('a record run again with other settings', () => {
    const rerun = async (record: ReindexImageInput['record'], changes: Partial<ReindexOptions>) =>
      reindex({ record, runId: `run-${randomUUID()}`, options: { ...options, ...changes } });
    const far = { ...ana, box: [0.1, 0.1, 0.3, 0.3] as DeclaredFace['box'] };
    const shifted = { ...ana, box: [0.17, 0.17, 0.3, 0.3] as DeclaredFace['box'] };

    test('looser IoU: the old face sent to review the first time is matched, to a face the target holds', async () => {
      const record = await photo([far], [shifted]);
      const strict = await rerun(record, { iouThreshold: 0.9 });
      expect(strict.review.map((item) => item.reason)).toEqual([ReasonCode.IouBelowThreshold]);
      expect(await facesInTarget()).toEqual([]);

      const loose = await rerun(record, { iouThreshold: 0.3 });

      expect(loose.results).toHaveLength(1);
      expect(loose.reusedEarlierIndexing).toBe(false);
      expect(await facesInTarget()).toEqual(rowFaces(loose));
    });

    test('stricter IoU: the matched face is deleted, and the earlier row naming it is retracted', async () => {
      const record = await photo([far], [shifted]);
      const loose = await rerun(record, { iouThreshold: 0.3 });
      expect(loose.results).toHaveLength(1);

      const strict = await rerun(record, { iouThreshold: 0.9 });

      expect(strict.review.map((item) => item.reason)).toEqual([ReasonCode.IouBelowThreshold]);
      expect(await facesInTarget()).toEqual([]);
      expect(strict.retractions).toEqual([
        { OldFaceId: faceId(1), CollectionId: collectionId, FaceIds: rowFaces(loose) },
      ]);
    });

    test('--unmatched keep, then delete: the kept face nobody had goes; the matched one stays named', async () => {
      const record = await photo([ana, bo], [ana]);
      const keep = await rerun(record, { unmatched: 'keep' });
      expect(await facesInTarget()).toHaveLength(2);

      const remove = await rerun(record, { unmatched: 'delete' });

      expect(remove.unmatchedNewFaces).toHaveLength(1);
      expect(await facesInTarget()).toEqual(rowFaces(remove));
      expect(
        rowFaces(remove).length === 1 && (faceIds === 'fresh') !== rowFaces(keep).includes(rowFaces(remove)[0] ?? ''),
      ).toBe(true);
    });

    test('another quality filter: a face the service filtered goes to review as FACE_FILTERED, then is migrated', async () => {
      const record = await photo([{ ...ana, quality: 40 }], [ana]);
      const high = await rerun(record, { qualityFilter: 'HIGH' });
      expect(high.review.map((item) => [item.reason, item.detail])).toEqual([
        [
          ReasonCode.FaceFiltered,
          expect.stringMatching(/left it out: LOW_FACE_QUALITY, LOW_SHARPNESS; another --quality-filter/),
        ],
      ]);

      const none = await rerun(record, { qualityFilter: 'NONE' });

      expect(none.results).toHaveLength(1);
      expect(await facesInTarget()).toEqual(rowFaces(none));
    });

    test('MaxFaces: a face past it goes to review as FACE_FILTERED with EXCEEDS_MAX_FACES', async () => {
      const outcome = await rerun(await photo([ana, bo]), { maxFaces: 1 });

      expect(outcome.results).toHaveLength(1);
      expect(outcome.review.map((item) => item.reason)).toEqual([ReasonCode.FaceFiltered]);
      expect(outcome.review[0]?.detail).toContain('EXCEEDS_MAX_FACES');
    });
  });

  test('two records of one image under one ExternalImageId never share a face', async () => {
    const record = await photo([ana, bo]);
    const [first, second] = [
      { ...record, Faces: record.Faces.slice(0, 1) },
      {
        ...record,
        Faces: [
          { ...record.Faces[1]!, FaceId: faceId(2) },
          { ...record.Faces[0]!, FaceId: faceId(3) },
        ],
      },
    ];

    const one = await reindex({ record: first, options: { ...options, unmatched: 'keep' } });
    const other = await reindex({ record: second, options: { ...options, unmatched: 'keep' } });

    const named = [...rowFaces(one), ...rowFaces(other)];
    expect(new Set(named).size).toBe(named.length);
    // The first record claimed both faces the service gives the image (one matched, one kept),
    // so under reuse the second gets neither.
    if (faceIds === 'reuse')
      expect(other.review.map((item) => item.reason)).toEqual([ReasonCode.NewFaceTaken, ReasonCode.NewFaceTaken]);
    else expect(other.review).toEqual([]);
    for (const face of named) expect(await facesInTarget()).toContain(face);
  });
});

describe('prepareTarget', () => {
  const admin = (body: unknown) =>
    fetch(`${rekognitionEndpoint}/_admin/settings`, { method: 'PUT', body: JSON.stringify(body) });
  let oldCollection: string;
  let newCollection: string;

  function prepare(input: Partial<PrepareTargetInput>) {
    const activities = createRekognitionActivities({
      rekognition: aws.rekognition,
      indexFacesClient: aws.indexFaces,
      s3: aws.s3,
      config,
    });
    return activityEnvironment().run(activities.prepareTarget, {
      runId: `run-${randomUUID()}`,
      targetCollectionId: newCollection,
      sourceCollectionId: oldCollection,
      force: false,
      ...input,
    });
  }

  /** The collection's tags, which the worker's IAM policy reads: only a tagged target may be changed. */
  async function tagsOf(CollectionId: string): Promise<Record<string, string>> {
    const { CollectionARN = '' } = await aws.rekognition.send(new DescribeCollectionCommand({ CollectionId }));
    return (
      (await aws.rekognition.send(new ListTagsForResourceCommand({ ResourceArn: `arn:${CollectionARN}` }))).Tags ?? {}
    );
  }
  const taggedAsTarget = { [MIGRATION_TARGET_TAG.Key]: MIGRATION_TARGET_TAG.Value };

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
    expect(await tagsOf(newCollection)).toEqual(taggedAsTarget);
  });

  test('refuses a target whose model is not newer, and removes the collection it made for nothing', async () => {
    const failure = prepare({ sourceCollectionId: collectionId });

    await expect(failure).rejects.toMatchObject({ type: ReasonCode.TargetModelNotNewer, nonRetryable: true });
    expect(await collectionExists(newCollection)).toBe(false);
    await expect(prepare({ sourceCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: true });
  });

  test('refuses an existing target holding faces it did not index, which reconcile would delete', async () => {
    await aws.rekognition.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { Bytes: syntheticPng([ana]) },
        QualityFilter: 'NONE',
      }),
    );

    await expect(prepare({ targetCollectionId: collectionId, force: true })).rejects.toMatchObject({
      type: ReasonCode.TargetNotOwned,
      nonRetryable: true,
    });
    expect(await facesInTarget()).toHaveLength(1);
    expect(await tagsOf(collectionId)).toEqual({});
  });

  test("takes an existing empty target and tags it, and keeps taking it once it holds the run's faces", async () => {
    await expect(prepare({ targetCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: false });
    expect(await tagsOf(collectionId)).toEqual(taggedAsTarget);
    await reindex({ record: await photo([ana]) });

    await expect(prepare({ targetCollectionId: collectionId, force: true })).resolves.toMatchObject({ created: false });
  });

  test('a source in another region is described there, with a client for that region', async () => {
    const regions: string[] = [];
    const clients: RekognitionClient[] = [];
    const activities = createRekognitionActivities({
      rekognition: aws.rekognition,
      indexFacesClient: aws.indexFaces,
      s3: aws.s3,
      config,
      rekognitionIn: (region) => {
        regions.push(region);
        clients.push(new RekognitionClient({ region, endpoint: rekognitionEndpoint }));
        return clients[clients.length - 1]!;
      },
    });
    const prepareIn = (sourceRegion: string, sourceCollectionId = oldCollection) =>
      activityEnvironment().run(activities.prepareTarget, {
        runId: `run-${randomUUID()}`,
        targetCollectionId: newCollection,
        sourceCollectionId,
        sourceRegion,
        force: false,
      });

    await expect(prepareIn('eu-west-1')).resolves.toMatchObject({ sourceFaceModelVersion: '6.0', created: true });
    await expect(prepareIn('ap-south-1', 'no-such-collection')).rejects.toMatchObject({
      type: ReasonCode.SourceCollectionNotFound,
      message: 'the source collection no-such-collection does not exist in ap-south-1',
    });
    expect(regions).toEqual(['eu-west-1', 'ap-south-1']);
    for (const client of clients) client.destroy();
  });

  test("a worker that may not list the source's faces fails at once, naming the permission: every batch checks its old faces there", async () => {
    const denied = createAwsClients(config);
    denied.rekognition.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListFacesCommand')
          throw new AccessDeniedException({
            message: 'not authorized to perform: rekognition:ListFaces',
            $metadata: {},
          });
        return next(args);
      },
      { step: 'initialize' },
    );
    const activities = createRekognitionActivities({
      rekognition: denied.rekognition,
      indexFacesClient: denied.indexFaces,
      s3: denied.s3,
      config,
    });
    try {
      const failure = activityEnvironment().run(activities.prepareTarget, {
        runId: `run-${randomUUID()}`,
        targetCollectionId: newCollection,
        sourceCollectionId: oldCollection,
        force: false,
      });

      await expect(failure).rejects.toMatchObject({
        type: ReasonCode.AccessDenied,
        nonRetryable: true,
        message: expect.stringContaining('(rekognition:ListFaces)') as string,
      });
    } finally {
      destroyAwsClients(denied);
    }
  });

  test('a source collection that does not exist fails for good', async () => {
    await expect(prepare({ sourceCollectionId: 'no-such-collection' })).rejects.toMatchObject({
      type: ReasonCode.SourceCollectionNotFound,
      nonRetryable: true,
    });
  });
});
