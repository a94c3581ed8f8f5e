import { randomUUID } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ApplicationFailure } from '@temporalio/common';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import {
  type ChunkEntry,
  createManifestActivities,
  type SplitManifestInput,
  type SplitProgress,
  type SplitSummary,
} from '../../src/activities/manifest';
import { createLedger, type Decision } from '../../src/stores/ledger';
import { createSourceFaceFinder } from '../../src/activities/rekognition';
import { type Config, loadConfig } from '../../src/domain/config';
import type { ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { chunkKey } from '../../src/shared';
import { useLocalStack } from '../../harness/local-stack';
import { activityEnvironment } from '../../harness/activity-environment';

let aws: AwsClients;
let config: Config;
let reviewDlqUrl: string;
let manifest: ReturnType<typeof createManifestActivities>;

beforeAll(() => {
  useLocalStack();
  config = loadConfig();
  aws = createAwsClients(config);
});

afterAll(() => {
  destroyAwsClients(aws);
});

beforeEach(async () => {
  reviewDlqUrl = (await aws.sqs.send(new CreateQueueCommand({ QueueName: `review-${randomUUID()}` }))).QueueUrl ?? '';
  manifest = createManifestActivities({
    s3: aws.s3,
    sqs: aws.sqs,
    config: { ...config, reviewDlqUrl },
    findSourceFaces: createSourceFaceFinder(aws.rekognition),
  });
});

afterEach(async () => {
  await aws.sqs.send(new DeleteQueueCommand({ QueueUrl: reviewDlqUrl }));
});

const faceId = (n: number) => `${String(n).padStart(8, '0')}-1111-2222-3333-444444444444`;
const record = (n: number, faces = 1) => ({
  Bucket: 'photos',
  Key: `people/${n}.jpg`,
  ExternalImageId: `person-${n}`,
  Faces: Array.from({ length: faces }, (_, f) => ({
    FaceId: faceId(n * 10 + f),
    BoundingBoxes: { Width: 0.2, Height: 0.2, Left: 0.1 * f, Top: 0.1 },
  })),
});

/** Runs splitManifest as Temporal would, in an activity context (attempt, heartbeat details). */
function split(input: SplitManifestInput, environment = activityEnvironment()): Promise<SplitSummary> {
  return environment.run<[SplitManifestInput], SplitSummary, typeof manifest.splitManifest>(
    manifest.splitManifest,
    input,
  );
}

async function upload(text: string): Promise<{ Bucket: string; Key: string }> {
  const Key = `records/${randomUUID()}.jsonl`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: text }));
  return { Bucket: config.bucket, Key };
}

async function chunks(prefix: string): Promise<ChunkEntry[][]> {
  const { Contents = [] } = await aws.s3.send(new ListObjectsV2Command({ Bucket: config.bucket, Prefix: prefix }));
  return Promise.all(
    Contents.map(async ({ Key }) => {
      const object = await aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key }));
      return JSON.parse((await object.Body?.transformToString()) ?? '[]') as ChunkEntry[];
    }),
  );
}

async function reviewed(): Promise<ReviewItem[]> {
  const items: ReviewItem[] = [];
  for (;;) {
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: reviewDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    if (Messages.length === 0) return items.sort((a, b) => (a.recordIndex ?? 0) - (b.recordIndex ?? 0));
    items.push(...Messages.map((message) => JSON.parse(message.Body ?? '{}') as ReviewItem));
  }
}

test('valid records land in numbered chunks; each refused record reaches review with its reason', async () => {
  const lines = [
    JSON.stringify(record(1, 2)),
    '{"Bucket": "photos", "Key": ',
    JSON.stringify(record(2)),
    JSON.stringify({ Bucket: 'photos', Key: 'people/nofaces.jpg' }),
    JSON.stringify(record(3)),
    JSON.stringify({ ...record(4), Faces: [record(4).Faces[0], record(4).Faces[0]] }),
    JSON.stringify(record(5)),
  ];
  const runId = `run-${randomUUID()}`;

  const summary = await split({ runId, manifest: await upload(lines.join('\n')), chunkSize: 2 });

  expect(summary).toEqual({
    records: 7,
    chunks: 3,
    validRecords: 4,
    invalidRecords: 3,
    refusedByReason: { [ReasonCode.InvalidRecord]: 2, [ReasonCode.DuplicateFaceId]: 1 },
    faces: 5,
    chunkPrefix: `runs/${runId}/chunks/`,
    truncated: false,
  });
  // Record 5 fills the review buffer, which flushes the partial chunk holding record 4.
  expect((await chunks(summary.chunkPrefix)).map((chunk) => chunk.map((entry) => entry.index))).toEqual([
    [0, 2],
    [4],
    [6],
  ]);
  const review = await reviewed();
  expect(review.map((item) => [item.recordIndex, item.reason])).toEqual([
    [1, ReasonCode.InvalidRecord],
    [3, ReasonCode.InvalidRecord],
    [5, ReasonCode.DuplicateFaceId],
  ]);
  // A refused record is kept as its position, reason and face ids: nothing else of what it holds.
  expect(review[1]).toEqual({
    reason: ReasonCode.InvalidRecord,
    runId,
    recordIndex: 3,
    faceIds: [],
    detail: 'Faces is missing',
  });
  expect(review[2]).toMatchObject({
    recordIndex: 5,
    faceIds: [record(4).Faces[0]?.FaceId, record(4).Faces[0]?.FaceId],
  });
  expect(review.every((item) => item.record === undefined && item.Key === undefined && item.Bucket === undefined)).toBe(
    true,
  );
  expect(review[0]?.detail).toMatch(/^line 2 is not valid JSON/);
});

const decision: Decision = { iouThreshold: 0.5, qualityFilter: 'AUTO', maxFaces: undefined, unmatched: 'delete' };

test("loading a chunk for a target says which of its records the ledger already holds an indexing of under the run's settings", async () => {
  const runId = `run-${randomUUID()}`;
  const target = `target-${randomUUID()}`;
  const summary = await split({
    runId,
    manifest: await upload([1, 2, 3, 4].map((n) => JSON.stringify(record(n))).join('\n')),
    chunkSize: 4,
  });
  const [entries = []] = await chunks(summary.chunkPrefix);
  const ledger = createLedger(aws.s3, config.bucket);
  const indexing = { faceModelVersion: '7.0', faces: [] };
  await ledger.recordIndexing(target, entries[1]!.record, decision, indexing);
  // The same image indexed under another scope (a DLQ redrive's),
  // with other settings, or into another target is not this batch's.
  await ledger.recordIndexing(target, entries[2]!.record, { ...decision, indexingScope: 'redrive-1' }, indexing);
  await ledger.recordIndexing(target, entries[3]!.record, { ...decision, iouThreshold: 0.3 }, indexing);
  await ledger.recordIndexing(`other-${target}`, entries[0]!.record, decision, indexing);

  const looked = await manifest.loadChunk(chunkKey(runId, 0), { runId, targetCollectionId: target, decision });
  const unlooked = await manifest.loadChunk(chunkKey(runId, 0));

  expect(looked.map(({ index, indexedBefore }) => [index, indexedBefore])).toEqual([
    [0, false],
    [1, true],
    [2, false],
    [3, false],
  ]);
  // Before any is indexed, the ledger holds every ExternalImageId the batch is about to index.
  expect(
    await ledger.hasExternalIds(
      target,
      entries.map(({ record: { ExternalImageId } }) => ExternalImageId ?? ''),
    ),
  ).toEqual([true, true, true, true]);
  expect(unlooked).toEqual(entries);
  expect(unlooked.every((entry) => entry.indexedBefore === undefined)).toBe(true);
});

test('a chunk of more records than are looked up at once keeps each record its own answer', async () => {
  const runId = `run-${randomUUID()}`;
  const target = `target-${randomUUID()}`;
  const count = 70;
  const summary = await split({
    runId,
    manifest: await upload(Array.from({ length: count }, (_, n) => JSON.stringify(record(n + 1))).join('\n')),
    chunkSize: count,
  });
  const [entries = []] = await chunks(summary.chunkPrefix);
  const ledger = createLedger(aws.s3, config.bucket);
  // Lookups go 32 at a time: these fall in the first, second and third slice.
  const indexed = [5, 33, 64];
  for (const index of indexed)
    await ledger.recordIndexing(target, entries[index]!.record, decision, { faceModelVersion: '7.0', faces: [] });

  const looked = await manifest.loadChunk(chunkKey(runId, 0), { runId, targetCollectionId: target, decision });

  expect(looked.map(({ index }) => index)).toEqual(entries.map(({ index }) => index));
  expect(looked.filter((entry) => entry.indexedBefore).map(({ index }) => index)).toEqual(indexed);
});

test('a retried attempt resumes after the last chunk its predecessor heartbeated', async () => {
  const text = [1, 2, 3, 4, 5, 6].map((n) => JSON.stringify(record(n))).join('\n');
  const runId = `run-${randomUUID()}`;
  const heartbeatDetails: SplitProgress = {
    records: 4,
    chunks: 2,
    validRecords: 4,
    invalidRecords: 0,
    refusedByReason: {},
    faces: 4,
  };

  const summary = await split(
    { runId, manifest: await upload(text), chunkSize: 2 },
    activityEnvironment({ attempt: 2, heartbeatDetails }),
  );

  expect(summary).toMatchObject({ records: 6, chunks: 3, validRecords: 6, faces: 6 });
  // Only the third chunk was written by this attempt; the first two were its predecessor's.
  const written = await chunks(summary.chunkPrefix);
  expect(written.map((chunk) => chunk.map((entry) => entry.index))).toEqual([[4, 5]]);
});

test('a truncated array splits what came before and sends one review item for the break', async () => {
  const text = `[${JSON.stringify(record(1))}, ${JSON.stringify(record(2))}, {"Bucket": "pho`;

  const summary = await split({ runId: `run-${randomUUID()}`, manifest: await upload(text), chunkSize: 10 });

  expect(summary).toMatchObject({ records: 3, chunks: 1, validRecords: 2, invalidRecords: 1, truncated: true });
  const review = await reviewed();
  expect(review).toHaveLength(1);
  expect(review[0]?.detail).toBe(
    'the records file is not valid JSON after record 2: it breaks off at line 1, inside the next record; its JSON array is never closed',
  );
});

test('a chunk is cut at about a megabyte, however few records it holds: a batch loads it as one Temporal payload', async () => {
  // Records of 600 faces, about 70 KB each: a chunk of 500 of them would be 35 MB.
  const crowded = (n: number) => ({
    ...record(n),
    Faces: Array.from({ length: 600 }, (_, f) => ({
      FaceId: faceId(n * 1000 + f),
      BoundingBoxes: { Width: 0.2, Height: 0.2, Left: 0.1, Top: 0.1 },
    })),
  });
  const text = Array.from({ length: 40 }, (_, n) => JSON.stringify(crowded(n))).join('\n');

  const summary = await split({ runId: `run-${randomUUID()}`, manifest: await upload(text), chunkSize: 500 });

  expect(summary).toMatchObject({ records: 40, validRecords: 40, chunks: 3 });
  const written = await chunks(summary.chunkPrefix);
  expect(written.flatMap((chunk) => chunk.map((entry) => entry.index))).toEqual(
    Array.from({ length: 40 }, (_, n) => n),
  );
  for (const chunk of written) expect(Buffer.byteLength(JSON.stringify(chunk))).toBeLessThan(2 * 1024 * 1024);
});

test('a record too large to read is refused with its size, and the records around it are split', async () => {
  const huge = JSON.stringify({ ...record(2), Notes: 'x'.repeat(200 * 1024) });
  const text = [JSON.stringify(record(1)), huge, JSON.stringify(record(3))].join('\n');

  const summary = await split({ runId: `run-${randomUUID()}`, manifest: await upload(text), chunkSize: 10 });

  expect(summary).toMatchObject({
    records: 3,
    validRecords: 2,
    invalidRecords: 1,
    refusedByReason: { [ReasonCode.InvalidRecord]: 1 },
    truncated: false,
  });
  expect((await reviewed()).map((item) => [item.recordIndex, item.reason, item.detail, item.record])).toEqual([
    [
      1,
      ReasonCode.InvalidRecord,
      `line 2 is too large for a record: ${Buffer.byteLength(huge).toLocaleString('en-US')} bytes, over the limit of 131,072`,
      undefined,
    ],
  ]);
});

test('a records file that does not exist fails at once, not retried, with MANIFEST_NOT_FOUND', async () => {
  const failure = split({
    runId: `run-${randomUUID()}`,
    manifest: { Bucket: config.bucket, Key: 'records/missing.jsonl' },
    chunkSize: 10,
  });

  await expect(failure).rejects.toBeInstanceOf(ApplicationFailure);
  await expect(failure).rejects.toMatchObject({ type: ReasonCode.ManifestNotFound, nonRetryable: true });
});

test('a records file in a bucket another account owns is not read: MANIFEST_NOT_FOUND, and S3 never sent it', async () => {
  const Key = `records/${randomUUID()}.jsonl`;
  await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: `${JSON.stringify(record(1))}\n` }));
  const elsewhere = createAwsClients({ ...config, bucketOwner: '210987654321' });
  const reading = createManifestActivities({
    s3: elsewhere.s3,
    sqs: aws.sqs,
    config: { ...config, reviewDlqUrl },
    findSourceFaces: createSourceFaceFinder(aws.rekognition),
  });

  try {
    const failure = activityEnvironment().run(reading.splitManifest, {
      runId: `run-${randomUUID()}`,
      manifest: { Bucket: config.bucket, Key },
      chunkSize: 10,
    });

    await expect(failure).rejects.toMatchObject({
      type: ReasonCode.ManifestNotFound,
      nonRetryable: true,
      message: expect.stringContaining('AccessDenied') as unknown,
    });
    await expect(
      elsewhere.s3.send(new ListObjectsV2Command({ Bucket: config.bucket, Prefix: Key })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    // The owner the local stack's configuration names is the bucket's: the same read goes through.
    expect(config.bucketOwner).toBe('123456789012');
    await expect(aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key }))).resolves.toMatchObject({
      $metadata: { httpStatusCode: 200 },
    });
  } finally {
    destroyAwsClients(elsewhere);
  }
});

describe('reading one version of the records file, from where the last attempt stopped', () => {
  /** A manifest activity whose S3 client notes the Range of every GetObject it sends. */
  function recordingRanges(): {
    activities: ReturnType<typeof createManifestActivities>;
    ranges: (string | undefined)[];
  } {
    const clients = createAwsClients(config);
    const ranges: (string | undefined)[] = [];
    clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') ranges.push((args.input as { Range?: string }).Range);
        return next(args);
      },
      { step: 'initialize' },
    );
    return {
      activities: createManifestActivities({
        s3: clients.s3,
        sqs: aws.sqs,
        config: { ...config, reviewDlqUrl },
        findSourceFaces: createSourceFaceFinder(aws.rekognition),
      }),
      ranges,
    };
  }

  /** The heartbeats a whole split sends: each flushed cursor a retry could resume from. */
  async function heartbeatsOfAWholeSplit(input: SplitManifestInput): Promise<SplitProgress[]> {
    const environment = activityEnvironment();
    const beats: SplitProgress[] = [];
    environment.on('heartbeat', (details: SplitProgress) => beats.push(details));
    await split(input, environment);
    return beats.filter((beat) => beat.cursor !== undefined);
  }

  test.each([
    ['JSON Lines', (lines: string[]) => lines.join('\n')],
    ['a JSON array', (lines: string[]) => `[\n${lines.join(',\n')}\n]`],
  ])(
    "%s: a retried attempt reads from its predecessor's byte offset and splits only what follows",
    async (_format, format) => {
      const text = format([1, 2, 3, 4, 5, 6].map((n) => JSON.stringify(record(n))));
      const location = await upload(text);
      const [, afterTwoChunks] = await heartbeatsOfAWholeSplit({
        runId: `run-${randomUUID()}`,
        manifest: location,
        chunkSize: 2,
      });
      expect(afterTwoChunks).toMatchObject({ records: 4, chunks: 2 });
      const resumeAt = afterTwoChunks?.cursor?.byte ?? 0;
      const { activities, ranges } = recordingRanges();
      const runId = `run-${randomUUID()}`;

      const summary = await activityEnvironment({ attempt: 2, heartbeatDetails: afterTwoChunks }).run<
        [SplitManifestInput],
        SplitSummary,
        typeof activities.splitManifest
      >(activities.splitManifest, {
        runId,
        manifest: location,
        chunkSize: 2,
      });

      expect(ranges).toEqual([`bytes=${resumeAt}-`]);
      expect(resumeAt).toBeGreaterThan(text.length / 2);
      expect(summary).toMatchObject({ records: 6, chunks: 3, validRecords: 6, faces: 6, truncated: false });
      expect((await chunks(summary.chunkPrefix)).map((chunk) => chunk.map((entry) => entry.index))).toEqual([[4, 5]]);
    },
  );

  test('a records file replaced between attempts fails the run for good with MANIFEST_CHANGED', async () => {
    const location = await upload([1, 2, 3, 4].map((n) => JSON.stringify(record(n))).join('\n'));
    const [first] = await heartbeatsOfAWholeSplit({ runId: `run-${randomUUID()}`, manifest: location, chunkSize: 2 });
    await aws.s3.send(
      new PutObjectCommand({
        ...location,
        Key: location.Key,
        Body: [7, 8, 9].map((n) => JSON.stringify(record(n))).join('\n'),
      }),
    );

    const retried = split(
      { runId: `run-${randomUUID()}`, manifest: location, chunkSize: 2 },
      activityEnvironment({ attempt: 2, heartbeatDetails: first }),
    );

    await expect(retried).rejects.toBeInstanceOf(ApplicationFailure);
    await expect(retried).rejects.toMatchObject({ type: ReasonCode.ManifestChanged, nonRetryable: true });
    await expect(retried).rejects.toThrow(/was replaced while the run read it/);
  });

  test('a records file replaced after the run started is refused by the first attempt too', async () => {
    const location = await upload(JSON.stringify(record(1)));
    const { ETag } = await aws.s3.send(new GetObjectCommand(location));
    await aws.s3.send(new PutObjectCommand({ ...location, Body: JSON.stringify(record(2)) }));

    await expect(
      split({ runId: `run-${randomUUID()}`, manifest: location, chunkSize: 2, manifestETag: ETag }),
    ).rejects.toMatchObject({ type: ReasonCode.ManifestChanged });
  });

  test('a split cancelled midway stops within a second and answers with the records it split', async () => {
    const total = 40_000;
    const location = await upload(Array.from({ length: total }, (_, n) => JSON.stringify(record(n))).join('\n'));
    const environment = activityEnvironment();
    let flushes = 0;
    environment.on('heartbeat', () => (flushes += 1));
    const runId = `run-${randomUUID()}`;
    const splitting = split({ runId, manifest: location, chunkSize: 100 }, environment);
    while (flushes < 3) await new Promise((resolve) => setTimeout(resolve, 20));

    const cancelledAt = performance.now();
    environment.cancel();
    const summary = await splitting;

    expect(performance.now() - cancelledAt).toBeLessThan(1_000);
    expect(summary.stopped).toBe(true);
    expect(summary.records).toBeLessThan(total);
    expect(summary.validRecords).toBe(summary.records);
    // The chunks the run will load hold exactly those records. A chunk whose write the cancel cut
    // short may be in S3 too, past them, and is never loaded.
    const counted = await Promise.all(
      Array.from({ length: summary.chunks }, async (_, n) => {
        const object = await aws.s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: chunkKey(runId, n) }));
        return JSON.parse((await object.Body?.transformToString()) ?? '[]') as ChunkEntry[];
      }),
    );
    expect(counted.flat().map((entry) => entry.index)).toEqual(Array.from({ length: summary.records }, (_, i) => i));
  }, 60_000);
});
