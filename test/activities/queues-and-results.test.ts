import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DeleteTableCommand } from '@aws-sdk/client-dynamodb';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { createQueueActivities } from '../../src/activities/queues';
import { sqsBatches } from '../../src/aws/sqs';
import { createResultsActivities, type DrainProgress } from '../../src/activities/results';
import { createRunsInFlight } from '../../src/activities/temporal';
import { createDrain, type DrainedWindow, type DrainWindow } from '../../src/activities/drain';
import { createLedger } from '../../src/stores/ledger';
import { loadConfig } from '../../src/domain/config';
import type { ResultRow, ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import { signRowBody } from '../../src/domain/result-rows';
import { useLocalStack } from '../../harness/local-stack';
import { activityEnvironment } from '../../harness/activity-environment';
import { createResultsTable, createTableBeforeRowsByRun, eventually } from '../../harness/runs';

let aws: AwsClients;
let resultsQueueUrl: string;
let reviewDlqUrl: string;
let resultsTable: string;
let queues: ReturnType<typeof createQueueActivities>;
let results: ReturnType<typeof createResultsActivities>;
let temporal: Client;
let runInFlight: ReturnType<typeof createRunsInFlight>;

beforeAll(async () => {
  useLocalStack();
  aws = createAwsClients(loadConfig());
  const { connectionOptions, namespace = 'default' } = loadClientConnectConfig();
  // The worker's kind of connection: its retries live in the SDK core, not in timers that outlast the suite.
  const connection = await NativeConnection.connect(connectionOptions);
  temporal = new Client({ connection, namespace });
  runInFlight = createRunsInFlight({ workflowService: connection.workflowService, namespace });
});

afterAll(async () => {
  await temporal.connection.close();
  destroyAwsClients(aws);
});

beforeEach(async () => {
  const suffix = randomUUID();
  // A short visibility timeout lets a test see a message it left in the queue come back.
  const queue = async (name: string) =>
    (
      await aws.sqs.send(
        new CreateQueueCommand({ QueueName: `${name}-${suffix}`, Attributes: { VisibilityTimeout: '1' } }),
      )
    ).QueueUrl ?? '';
  resultsQueueUrl = await queue('results');
  reviewDlqUrl = await queue('review');
  resultsTable = await createResultsTable(aws, `results-${suffix}`);
  const config = { resultsQueueUrl, reviewDlqUrl, resultsTable, bucket: loadConfig().bucket };
  queues = createQueueActivities({ sqs: aws.sqs, s3: aws.s3, config });
  results = createResultsActivities({ sqs: aws.sqs, dynamodb: aws.dynamodb, s3: aws.s3, config, runInFlight });
});

afterEach(async () => {
  await Promise.all([
    aws.sqs.send(new DeleteQueueCommand({ QueueUrl: resultsQueueUrl })),
    aws.sqs.send(new DeleteQueueCommand({ QueueUrl: reviewDlqUrl })),
    aws.dynamodb.send(new DeleteTableCommand({ TableName: resultsTable })),
  ]);
});

function row(n: number): ResultRow {
  return {
    OldFaceId: `old-${n}`,
    FaceId: `new-${n}`,
    OldImageId: 'old-image',
    ImageId: 'new-image',
    ExternalImageId: `person-${n}`,
    UserId: n % 2 === 0 ? `user-${n}` : undefined,
    Bucket: 'photos',
    Key: `people/${n}.jpg`,
    BoundingBox: { Width: 0.2, Height: 0.3, Left: 0.4, Top: 0.1 },
    OldBoundingBox: { Width: 0.21, Height: 0.3, Left: 0.4, Top: 0.1 },
    IoU: 0.93,
    SourceCollectionId: 'faces-v6',
    CollectionId: 'faces-v7',
    FaceModelVersion: '7.0',
    RunId: 'run-1',
    MigratedAt: '2026-11-28T05:00:00.000Z',
    RecordIndex: n,
  };
}

async function tableRows(): Promise<ResultRow[]> {
  const { Items = [] } = await aws.dynamodb.send(new ScanCommand({ TableName: resultsTable }));
  return (Items as ResultRow[]).sort((a, b) => a.OldFaceId.localeCompare(b.OldFaceId, 'en', { numeric: true }));
}

/** Messages of the results queue a receive would get now: those no receiver holds. */
async function visibleMessages(): Promise<number> {
  const { Attributes = {} } = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: resultsQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
  );
  return Number(Attributes.ApproximateNumberOfMessages);
}

const drain = (maxMessages: number) =>
  activityEnvironment().run<[number], DrainProgress, typeof results.drainResults>(results.drainResults, maxMessages);

test('every published result reaches the table once, and the queue is left empty', async () => {
  const rows = Array.from({ length: 25 }, (_, i) => row(i + 1));
  await activityEnvironment().run(queues.publishResults, rows);

  const progress = await drain(1000);

  expect(progress).toEqual({ written: 25, queueEmpty: true, duplicates: [] });
  const drainedBy: unknown = expect.stringMatching(/#1$/);
  expect(await tableRows()).toEqual(
    rows.map((r) => ({
      ...Object.fromEntries(Object.entries(r).filter(([, value]) => value !== undefined)),
      DrainedBy: drainedBy,
    })),
  );
  await expect(drain(1000)).resolves.toEqual({ written: 0, queueEmpty: true, duplicates: [] });
});

test('rows of another run drained late never undo a later decision: an older row, or one whose face its record no longer keeps, is dropped', async () => {
  const collection = `faces-${randomUUID()}`;
  const ledger = createLedger(aws.s3, loadConfig().bucket);
  const at = (minute: number) => `2026-11-28T05:0${minute}:00.000Z`;
  const newer = { ...row(1), CollectionId: collection, RunId: 'run-2', MigratedAt: at(5) };
  const older = { ...row(1), CollectionId: collection, FaceId: 'superseded-1', RunId: 'run-1', MigratedAt: at(1) };
  // Run 1 failed before its drain; its record was indexed again since and no longer keeps its face.
  const orphaned = { ...row(2), CollectionId: collection, RunId: 'run-1', MigratedAt: at(1) };
  await ledger.claimFaces(collection, [orphaned.FaceId], { identity: 'record-2', runId: 'run-1' });
  await ledger.setCurrent(collection, 'record-2', {
    indexing: 'again',
    kept: ['new-2-again'],
    faces: [orphaned.FaceId, 'new-2-again'],
    runId: 'run-2',
  });
  await activityEnvironment().run(queues.publishResults, [newer]);
  await drain(1000);

  await activityEnvironment().run(queues.publishResults, [older, orphaned]);
  const progress = await drain(1000);

  expect(progress).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
  expect((await tableRows()).map((r) => [r.OldFaceId, r.FaceId, r.RunId])).toEqual([['old-1', 'new-1', 'run-2']]);
});

test('rows of another run in flight are written without a look in the ledger; rows of an ended run are checked there', async () => {
  const collection = `faces-${randomUUID()}`;
  // Runs with no worker: started, one stays in flight; the other is ended at once.
  const start = (workflowId: string) =>
    temporal.workflow.start('reindexCollection', { workflowId, taskQueue: `no-worker-${randomUUID()}`, args: [] });
  const inFlight = await start(`in-flight-${randomUUID()}`);
  const ended = await start(`ended-${randomUUID()}`);
  await ended.terminate('ended before its rows are drained');
  const rowsOf = (runId: string, first: number) =>
    Array.from({ length: 10 }, (_, i) => ({ ...row(first + i), CollectionId: collection, RunId: runId }));
  const ledgerReads = async (rows: ResultRow[]) => {
    await activityEnvironment().run(queues.publishResults, rows);
    let reads = 0;
    const counter = 'count-ledger-reads';
    aws.s3.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'GetObjectCommand') reads += 1;
        return next(args);
      },
      { step: 'initialize', name: counter },
    );
    try {
      expect(await drain(1000)).toEqual({ written: rows.length, queueEmpty: true, duplicates: [] });
    } finally {
      aws.s3.middlewareStack.remove(counter);
    }
    return reads;
  };
  try {
    // At most the run's signing key is read; no face of the ledger is.
    expect(await ledgerReads(rowsOf(inFlight.workflowId, 1))).toBeLessThanOrEqual(1);
    expect(await ledgerReads(rowsOf(ended.workflowId, 11))).toBeGreaterThanOrEqual(10);
  } finally {
    await inFlight.terminate('test over');
  }
  expect(await tableRows()).toHaveLength(20);
});

test("a retraction deletes an earlier run's row only while it names a face the re-run deleted", async () => {
  await activityEnvironment().run(queues.publishResults, [row(1), row(2)]);
  await drain(1000);

  await activityEnvironment().run(results.retractRows, [
    { OldFaceId: 'old-1', CollectionId: 'faces-v7', FaceIds: ['gone', 'new-1'] },
    { OldFaceId: 'old-2', CollectionId: 'faces-v7', FaceIds: ['gone'] },
    { OldFaceId: 'old-3', CollectionId: 'faces-v7', FaceIds: ['new-3'] },
  ]);

  expect((await tableRows()).map((r) => r.OldFaceId)).toEqual(['old-2']);
});

test('a result delivered twice, as after a crash between write and delete, is one row, counted once, and no duplicate', async () => {
  for (let copy = 0; copy < 2; copy += 1) await activityEnvironment().run(queues.publishResults, [row(7)]);
  expect(await drain(1000)).toEqual({ written: 1, queueEmpty: true, duplicates: [] });
  // The second copy comes in a later drain, after its row was written.
  await activityEnvironment().run(queues.publishResults, [row(7)]);

  expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
  expect((await tableRows()).map((r) => r.OldFaceId)).toEqual(['old-7']);
});

test('rows a failed drain attempt wrote are counted once by the next attempt, whose messages they came back as', async () => {
  const attempt = (number: number, activityId = 'drain-3') =>
    activityEnvironment({ activityId, attempt: number }).run<[number], DrainProgress, typeof results.drainResults>(
      results.drainResults,
      1000,
    );
  const send = (result: ResultRow) => activityEnvironment().run(queues.publishResults, [result]);
  await send(row(1));
  await send(row(2));
  // Attempt 1 wrote both rows, then its worker died: the workflow never learns its count.
  await attempt(1);
  // Their messages were not deleted, and one came back twice.
  await send(row(1));
  await send(row(1));
  await send(row(2));
  await send(row(3));

  expect(await attempt(2)).toEqual({ written: 3, queueEmpty: true, duplicates: [] });
  // A copy arriving at a later drain finds the row a completed drain counted.
  await send(row(1));
  expect(await attempt(1, 'drain-4')).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
  expect((await tableRows()).map((r) => r.OldFaceId)).toEqual(['old-1', 'old-2', 'old-3']);
});

/** The continuous drain over the suite's queue and table, for rows none of which is a duplicate. */
const drainWithoutDuplicates = (resultsWaitLimitMs?: number) =>
  createDrain({
    drainPass: results.drainPass,
    accountRunRows: results.accountRunRows,
    deleteDuplicateFaces: () => Promise.reject(new Error('no duplicate faces to delete here')),
    sendToReview: queues.sendToReview,
    settleDuplicates: results.settleDuplicates,
    ...(resultsWaitLimitMs === undefined ? {} : { resultsWaitLimitMs }),
  });

describe('a drain window and the backlog', () => {
  /** A window of the continuous drain, under a limit on how long a row may wait. */
  const drainWindow = (resultsWaitLimitMs: number, window: Omit<DrainWindow, 'runId' | 'forMs' | 'untilEmpty'>) => {
    const { drainContinuously } = drainWithoutDuplicates(resultsWaitLimitMs);
    return activityEnvironment().run<[DrainWindow], DrainedWindow, typeof drainContinuously>(drainContinuously, {
      runId: 'run-1',
      forMs: 60_000,
      untilEmpty: true,
      ...window,
    });
  };
  const rows = Array.from({ length: 40 }, (_, i) => row(i + 1));

  test('rows younger than the limit are drained to the end, with no word on the backlog', async () => {
    await activityEnvironment().run(queues.publishResults, rows);

    const window = await drainWindow(60_000, { heldBack: false });

    expect(window).toMatchObject({ written: 40, queueEmpty: true, duplicatesOfRun: 0 });
    expect(window.backlog).toBeUndefined();
    expect(await tableRows()).toHaveLength(40);
  });

  test('a row older than the limit ends the window as behind; held back, the next ends once the backlog is gone; each row written once', async () => {
    await activityEnvironment().run(queues.publishResults, rows);
    await new Promise((resolve) => setTimeout(resolve, 600));

    const behind = await drainWindow(300, { heldBack: false });
    expect(behind).toMatchObject({ backlog: 'behind', queueEmpty: false });
    expect(behind.oldestAgeMs).toBeGreaterThan(300);
    expect(behind.written).toBeGreaterThan(0);

    const caughtUp = await drainWindow(300, { heldBack: true });
    expect(caughtUp.backlog).toBe('caughtUp');
    expect(behind.written + caughtUp.written).toBe(40);
    expect(await tableRows()).toEqual(
      rows.map((r) => expect.objectContaining({ OldFaceId: r.OldFaceId, FaceId: r.FaceId }) as unknown),
    );
  });

  test('a window of a run that records no hold answers for neither, however old the rows', async () => {
    await activityEnvironment().run(queues.publishResults, rows);
    await new Promise((resolve) => setTimeout(resolve, 600));

    const window = await drainWindow(300, {});

    expect(window).toMatchObject({ written: 40, queueEmpty: true });
    expect(window.backlog).toBeUndefined();
  });
});

test('a drain stops at maxMessages and the next one takes the rest', async () => {
  await activityEnvironment().run(
    queues.publishResults,
    Array.from({ length: 15 }, (_, i) => row(i + 1)),
  );

  expect(await drain(10)).toEqual({ written: 10, queueEmpty: false, duplicates: [] });
  expect(await drain(10)).toEqual({ written: 5, queueEmpty: true, duplicates: [] });
  expect(await tableRows()).toHaveLength(15);
});

test('a message that is no result row is left in the queue for its DLQ, and the rest still land', async () => {
  await aws.sqs.send(new SendMessageCommand({ QueueUrl: resultsQueueUrl, MessageBody: 'not json' }));
  await activityEnvironment().run(queues.publishResults, [row(1)]);

  // The queue is not empty until SQS has moved the message to the results DLQ.
  expect(await drain(1000)).toEqual({ written: 1, queueEmpty: false, duplicates: [] });
  await eventually(async () => (await visibleMessages()) === 1);
  const { Messages = [] } = await aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: resultsQueueUrl, WaitTimeSeconds: 1 }),
  );
  expect(Messages.map((message) => message.Body)).toEqual(['not json']);
});

describe('a row this tool did not sign is not written, and is left for the results DLQ', () => {
  /** What anyone allowed to send to the queue could send: a row of a real run, remapping its old face. */
  const forged = { ...row(1), FaceId: 'someone-else' };
  /** A signature made as the worker makes it, with the run's own key. */
  const signatureOf = async (body: string, { CollectionId, RunId }: ResultRow) =>
    signRowBody(body, await createLedger(aws.s3, loadConfig().bucket).ensureRunKey(CollectionId, RunId));
  const sendRaw = (body: string, signature?: string) =>
    aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: resultsQueueUrl,
        MessageBody: body,
        ...(signature === undefined
          ? {}
          : { MessageAttributes: { signature: { DataType: 'String', StringValue: signature } } }),
      }),
    );

  test.each([
    ['unsigned', () => sendRaw(JSON.stringify(forged))],
    [
      'signed for another row',
      async () => sendRaw(JSON.stringify(forged), await signatureOf(JSON.stringify(row(1)), row(1))),
    ],
    [
      'of a run that never published',
      () => sendRaw(JSON.stringify({ ...forged, RunId: `run-${randomUUID()}` }), 'c2lnbmF0dXJl'),
    ],
    [
      'with a field of the wrong kind, though signed',
      async () => {
        const body = JSON.stringify({ ...row(1), IoU: 'high' });
        await sendRaw(body, await signatureOf(body, row(1)));
      },
    ],
  ])('%s', async (_, sendIt) => {
    await activityEnvironment().run(queues.publishResults, [row(2)]);
    await sendIt();

    expect(await drain(1000)).toEqual({ written: 1, queueEmpty: false, duplicates: [] });
    expect((await tableRows()).map((r) => r.OldFaceId)).toEqual(['old-2']);
  });
});

test('messages another receiver holds keep the queue from counting as empty until they are written', async () => {
  await activityEnvironment().run(queues.publishResults, [row(1), row(2)]);
  // A drain attempt that died after receiving: its messages are invisible, not gone.
  await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: resultsQueueUrl, MaxNumberOfMessages: 10 }));

  expect(await drain(1000)).toEqual({ written: 0, queueEmpty: false, duplicates: [] });
  // Their visibility timeout over, SQS shows them again.
  await eventually(async () => (await visibleMessages()) === 2);
  expect(await drain(1000)).toEqual({ written: 2, queueEmpty: true, duplicates: [] });
});

describe('a second row of one old face', () => {
  /** Old face 1 as a second record of the file migrates it: another image, another new face, a moment later. */
  const secondRecord = (changes: Partial<ResultRow> = {}): ResultRow => ({
    ...row(1),
    FaceId: 'new-1-again',
    ImageId: 'new-image-again',
    Key: 'people/1-again.jpg',
    ExternalImageId: 'person-1-again',
    MigratedAt: '2026-11-28T05:00:01.000Z',
    RecordIndex: 101,
    ...changes,
  });
  const send = (result: ResultRow) => activityEnvironment().run(queues.publishResults, [result]);

  test('of an earlier run is overwritten: a re-run, a redrive or another target answers for the old face now', async () => {
    await send(row(1));
    await drain(1000);
    await send(secondRecord({ RunId: 'run-2' }));

    expect(await drain(1000)).toEqual({ written: 1, queueEmpty: true, duplicates: [] });
    expect((await tableRows()).map((r) => [r.OldFaceId, r.FaceId, r.RunId])).toEqual([
      ['old-1', 'new-1-again', 'run-2'],
    ]);
  });

  test('of the same run is refused and held; once settled, its message is gone and a later copy of it is no duplicate again', async () => {
    await send(row(1));
    await drain(1000);
    // Two copies: the batch published it twice after a crash.
    await send(secondRecord());
    await send(secondRecord());

    const drained = await drain(1000);

    expect(drained.written).toBe(0);
    // The refused row's message waits in the queue until the run has settled it.
    expect(drained.queueEmpty).toBe(false);
    expect(drained.duplicates).toHaveLength(1);
    const [duplicate] = drained.duplicates ?? [];
    expect(duplicate?.receiptHandles).toHaveLength(2);
    expect(duplicate?.surplusFaceId).toBe('new-1-again');
    expect(duplicate?.review).toMatchObject({
      reason: ReasonCode.DuplicateFaceId,
      runId: 'run-1',
      Key: 'people/1-again.jpg',
      face: { FaceId: 'old-1', ImageId: 'old-image', BoundingBoxes: row(1).OldBoundingBox },
    });
    expect(duplicate?.review.detail).toBe(
      "old face old-1 is migrated already in this run, as new face new-1, by the record of s3://photos/people/1.jpg (ExternalImageId person-1); this record's new face new-1-again was deleted from the target",
    );
    expect((await tableRows()).map((r) => r.FaceId)).toEqual(['new-1']);

    await activityEnvironment().run(results.settleDuplicates, drained.duplicates ?? []);
    expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });

    await send(secondRecord());
    expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
    expect((await tableRows()).map((r) => r.FaceId)).toEqual(['new-1']);
  });

  test('in the same receive as the first: one of them holds the old face, the other is refused', async () => {
    await activityEnvironment().run(queues.publishResults, [row(1), secondRecord()]);

    const drained = await drain(1000);

    expect(drained.written).toBe(1);
    expect(drained.duplicates).toHaveLength(1);
    const held = await tableRows();
    expect(held).toHaveLength(1);
    expect([held[0]?.FaceId, drained.duplicates?.[0]?.row.FaceId].sort()).toEqual(['new-1', 'new-1-again']);
  });

  test('sent again by a retry of its record, decided anew, is the same row: counted once and no duplicate', async () => {
    await send(row(1));
    await drain(1000);
    // The image's first attempt sent its row and died; the retry decided again a second later.
    await send({ ...row(1), MigratedAt: '2026-11-28T05:00:01.000Z' });

    expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
    expect((await tableRows()).map((r) => [r.FaceId, r.MigratedAt])).toEqual([['new-1', row(1).MigratedAt]]);
  });

  test('of the same record with another face takes the place of the earlier decision, which is dropped when it comes late', async () => {
    const redone = {
      ...row(1),
      FaceId: 'new-1-redone',
      ImageId: 'new-image-redone',
      MigratedAt: '2026-11-28T05:00:01.000Z',
    };
    await send(row(1));
    await drain(1000);
    await send(redone);

    expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
    expect((await tableRows()).map((r) => r.FaceId)).toEqual(['new-1-redone']);

    await send(row(1));
    expect(await drain(1000)).toEqual({ written: 0, queueEmpty: true, duplicates: [] });
    expect((await tableRows()).map((r) => r.FaceId)).toEqual(['new-1-redone']);
  });

  test('from an identical record, indexed once with the first, is refused but keeps the face both rows name', async () => {
    await send(row(1));
    await drain(1000);
    await send({ ...row(1), MigratedAt: '2026-11-28T05:00:01.000Z', RecordIndex: 101 });

    const drained = await drain(1000);

    expect(drained.duplicates).toHaveLength(1);
    expect(drained.duplicates?.[0]?.surplusFaceId).toBeUndefined();
    expect(drained.duplicates?.[0]?.review.detail).toMatch(
      /that record is this image, indexed once, so no face was deleted$/,
    );
  });
});

describe("a run's own rows in the table", () => {
  const since = '2026-11-28T04:00:00.000Z';
  const account = (runId: string) =>
    activityEnvironment().run(results.accountRunRows, { runId, since }, () => undefined);
  /** Old face `n`'s row in `RunId`, decided at `MigratedAt`. */
  const rowOf = (n: number, RunId: string, MigratedAt = row(n).MigratedAt): ResultRow => ({
    ...row(n),
    RunId,
    MigratedAt,
  });

  test("are counted with the duplicates settled against them; another run's rows, and an earlier run's of the same id, are not", async () => {
    await activityEnvironment().run(queues.publishResults, [
      ...[1, 2, 3, 4].map((n) => rowOf(n, 'run-1')),
      rowOf(5, 'run-1', '2026-11-27T23:00:00.000Z'),
      rowOf(6, 'run-2'),
    ]);
    await drain(1000);
    // A second record of old face 2 in run-1, refused and settled.
    await activityEnvironment().run(queues.publishResults, [
      { ...rowOf(2, 'run-1', '2026-11-28T05:00:01.000Z'), FaceId: 'new-2-again', RecordIndex: 102 },
    ]);
    const drained = await drain(1000);
    expect(drained.duplicates).toHaveLength(1);
    await activityEnvironment().run(results.settleDuplicates, drained.duplicates ?? []);

    expect(await account('run-1')).toEqual({ rows: 4, settledDuplicates: 1 });
    expect(await account('run-2')).toEqual({ rows: 1, settledDuplicates: 0 });
    expect(await account('run-3')).toEqual({ rows: 0, settledDuplicates: 0 });
  });

  test('in a table made before the index of rows by run: no count, so the run falls back on an empty queue', async () => {
    const TableName = await createTableBeforeRowsByRun(aws, `results-unindexed-${randomUUID()}`);
    try {
      const unindexed = createResultsActivities({
        sqs: aws.sqs,
        dynamodb: aws.dynamodb,
        s3: aws.s3,
        config: { resultsQueueUrl, resultsTable: TableName, bucket: loadConfig().bucket },
        runInFlight,
      });
      expect(
        await activityEnvironment().run(unindexed.accountRunRows, { runId: 'run-1', since }, () => undefined),
      ).toBeUndefined();
    } finally {
      await aws.dynamodb.send(new DeleteTableCommand({ TableName }));
    }
  });

  describe("end a window at the run's end while another run's message keeps the queue from empty", () => {
    const windowAt = (rowsSent: number, forMs: number) => {
      const { drainContinuously } = drainWithoutDuplicates();
      return activityEnvironment().run<[DrainWindow], DrainedWindow, typeof drainContinuously>(drainContinuously, {
        runId: 'run-1',
        forMs,
        untilEmpty: true,
        accountFor: { rowsSent, since },
      });
    };

    beforeEach(async () => {
      await activityEnvironment().run(queues.publishResults, [rowOf(99, 'run-2')]);
      // Another run's drain holds its message: the queue is not empty while it does.
      const { Messages = [] } = await aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: resultsQueueUrl, VisibilityTimeout: 300, WaitTimeSeconds: 5 }),
      );
      expect(Messages).toHaveLength(1);
      await activityEnvironment().run(
        queues.publishResults,
        Array.from({ length: 12 }, (_, i) => rowOf(i + 1, 'run-1')),
      );
    });

    test('once the table holds every row the run sent', async () => {
      const began = Date.now();

      const window = await windowAt(12, 120_000);

      expect(window).toMatchObject({ written: 12, queueEmpty: false, runAccounted: true });
      expect(Date.now() - began).toBeLessThan(60_000);
      expect((await tableRows()).map((r) => r.RunId)).toEqual(Array.from({ length: 12 }, () => 'run-1'));
    });

    test('not while a row the run sent is missing: the window runs to its end', async () => {
      const window = await windowAt(13, 4_000);

      expect(window).toMatchObject({ written: 12, queueEmpty: false });
      expect(window.runAccounted).toBeUndefined();
    });
  });
});

test('entries are grouped ten at most and under the 256 KiB a batch may carry', () => {
  const sizes = [60_000, 60_000, 60_000, 60_000, 60_000, 10, 10, 200_000, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
  const grouped = sqsBatches(sizes.map((size) => ({ MessageBody: 'x'.repeat(size) })));

  expect(grouped.map((batch) => batch.map((entry) => entry.MessageBody?.length))).toEqual([
    [60_000, 60_000, 60_000, 60_000],
    [60_000, 10, 10],
    [200_000, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    [1, 1],
  ]);
});

test('review items reach the DLQ one message each, with reason and run as attributes', async () => {
  const items: ReviewItem[] = Array.from({ length: 12 }, (_, i) => ({
    reason: i % 3 === 0 ? ReasonCode.NoFaceDetected : ReasonCode.IouBelowThreshold,
    detail: 'why',
    runId: 'run-1',
    Bucket: 'photos',
    Key: `people/${i}.jpg`,
    ExternalImageId: undefined,
    face: undefined,
  }));
  await activityEnvironment().run(queues.sendToReview, items);

  const received: { key: string | undefined; reason: string | undefined; runId: string | undefined }[] = [];
  while (received.length < 12) {
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: reviewDlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageAttributeNames: ['All'],
      }),
    );
    if (Messages.length === 0) break;
    for (const message of Messages) {
      const item = JSON.parse(message.Body ?? '{}') as ReviewItem;
      received.push({
        key: item.Key,
        reason: message.MessageAttributes?.reason?.StringValue,
        runId: message.MessageAttributes?.runId?.StringValue,
      });
    }
  }
  expect(received.sort((a, b) => (a.key ?? '').localeCompare(b.key ?? '', 'en', { numeric: true }))).toEqual(
    items.map((item) => ({ key: item.Key, reason: item.reason, runId: 'run-1' })),
  );
});
