/**
 * The reindex workflows on Temporal's time-skipping server, with the real activities against the
 * local stack: batches per chunk, pause over days, throttling over a long backoff, continue-as-new
 * and cancellation, each checked by what a user would look at afterwards.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { ReasonCode } from '../../src/domain/reasons';
import {
  chunkKey,
  pauseSignal,
  progressQuery,
  type ReindexCollectionInput,
  reportKey,
  resumeSignal,
  type RunSummary,
  DEFAULT_TASK_QUEUE,
} from '../../src/shared';
import { createWorkers } from '../../src/worker';
import type { reindexCollection } from '../../src/workflows';
import {
  createRunResources,
  eventually,
  facesIn,
  indexFacesCalls,
  registerSearchAttributes,
  rekognitionAdmin,
  resultRows,
  type RunResources,
  runInput,
  takeReview,
  writeRecords,
} from '../../harness/runs';
import { TEST_SERVER_EXECUTABLE } from '../../harness/tools';
import type { DeclaredFace } from '../../infra/rekognition-local/images';

const DAY_MS = 24 * 60 * 60 * 1000;

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundleWithSourceMap;
let resources: RunResources;

beforeAll(async () => {
  [env, workflowBundle, resources] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: TEST_SERVER_EXECUTABLE } },
    }),
    bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: new DefaultLogger('WARN') }),
    createRunResources(),
  ]);
  await registerSearchAttributes(env);
}, 120_000);

afterAll(async () => {
  await resources?.release();
  await env?.teardown();
});

afterEach(async () => {
  await rekognitionAdmin('settings', 'PUT', { quotas: {}, latency: {}, faultRate: 0 });
});

/** Runs `work` while both workers poll, then shuts them down. */
async function withWorkers<T>(
  work: () => Promise<T>,
  { resultsWaitLimitMs }: { resultsWaitLimitMs?: number } = {},
): Promise<T> {
  const activities = createActivities(resources.aws, resources.config, { orphanGraceMs: 3_000, resultsWaitLimitMs });
  const workers = await createWorkers({
    connection: env.nativeConnection,
    namespace: 'default',
    activities,
    indexFacesTps: 1000,
    workflowBundle,
  });
  const running = workers.map((worker) => worker.run());
  try {
    return await work();
  } finally {
    for (const worker of workers) worker.shutdown();
    await Promise.all(running);
  }
}

function start(input: ReindexCollectionInput) {
  return env.client.workflow.start<typeof reindexCollection>('reindexCollection', {
    taskQueue: DEFAULT_TASK_QUEUE,
    workflowId: `reindex-${randomUUID()}`,
    args: [input],
  });
}

const target = () => resources.ownCollection(`target-${randomUUID()}`);
const face = (person: string): DeclaredFace => ({ person, box: [0.2, 0.2, 0.4, 0.4] });
const photos = (count: number) => Array.from({ length: count }, (_, i) => ({ faces: [face(`person-${i % 5}`)] }));

/** Every old face has a row; the target holds exactly the faces the rows name. */
async function expectConsistent(
  runId: string,
  collectionId: string,
  summary: Pick<RunSummary, 'matched'>,
): Promise<void> {
  const rows = await resultRows(resources, runId);
  expect(rows).toHaveLength(summary.matched);
  expect(await facesIn(resources, collectionId)).toEqual(rows.map((row) => row.FaceId).sort());
}

test('one batch child per chunk, with ids derived from the run, and every face migrated once', async () => {
  const { manifest, oldFaceIds } = await writeRecords(resources, photos(7));
  const collectionId = target();

  const { handle, summary } = await withWorkers(async () => {
    const started = await start(runInput(manifest, collectionId, { batchSize: 3 }));
    return { handle: started, summary: await started.result() };
  });

  expect(summary).toMatchObject({
    status: 'completed',
    images: 7,
    faces: 7,
    matched: 7,
    dlq: 0,
    resultsWritten: 7,
    orphansDeleted: 0,
  });
  for (const batch of [0, 1, 2]) {
    const child = await env.client.workflow.getHandle(`${handle.workflowId}/batch-${batch}`).describe();
    expect(child.status.name).toBe('COMPLETED');
  }
  await expect(env.client.workflow.getHandle(`${handle.workflowId}/batch-3`).describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
  const rows = await resultRows(resources, handle.workflowId);
  expect(rows.map((row) => row.OldFaceId).sort()).toEqual([...oldFaceIds].sort());
  await expectConsistent(handle.workflowId, collectionId, summary);
});

// Paused from its first moment: the time-skipping server fails the workflow task that cancels an
// activity as it completes (ACTIVITY_UNKNOWN), so a pause mid-batch, which calls back queued
// images, is tested on the dev server (test/e2e/failures.test.ts).
test('a paused run starts no IndexFaces for days, its drain idle, then resumes and migrates every image', async () => {
  const { manifest } = await writeRecords(resources, photos(8));
  const collectionId = target();
  const callsBefore = await indexFacesCalls();

  const summary = await withWorkers(async () => {
    const handle = await env.client.workflow.signalWithStart<typeof reindexCollection, []>('reindexCollection', {
      taskQueue: DEFAULT_TASK_QUEUE,
      workflowId: `reindex-${randomUUID()}`,
      args: [runInput(manifest, collectionId, { imagesInFlightPerBatch: 1 })],
      signal: pauseSignal,
    });
    await env.sleep('3 days');
    expect(await indexFacesCalls()).toBe(callsBefore);
    expect(await handle.query(progressQuery)).toMatchObject({ phase: 'indexing', paused: true });
    expect((await handle.describe()).historyLength).toBeLessThan(400);
    await handle.signal(resumeSignal);
    return handle.result();
  });

  expect(summary).toMatchObject({ status: 'completed', images: 8, matched: 8, dlq: 0 });
  expect(summary.durationMs).toBeGreaterThanOrEqual(3 * DAY_MS);
  expect((await indexFacesCalls()) - callsBefore).toBe(8);
});

test('throttling is retried over a long backoff, never sent to the DLQ', async () => {
  const { manifest } = await writeRecords(resources, photos(3));
  const collectionId = target();
  await rekognitionAdmin('settings', 'PUT', { quotas: { IndexFaces: { tps: 0.0001, burst: 1 } } });

  const summary = await withWorkers(async () => {
    const handle = await start(runInput(manifest, collectionId));
    await env.sleep('30 minutes');
    expect(await handle.query(progressQuery)).toMatchObject({ phase: 'indexing' });
    await rekognitionAdmin('settings', 'PUT', { quotas: {} });
    return handle.result();
  });

  expect(summary).toMatchObject({ status: 'completed', images: 3, matched: 3, dlq: 0 });
  expect(summary.durationMs).toBeGreaterThanOrEqual(30 * 60 * 1000);
  await expectConsistent(summary.workflowId, collectionId, summary);
});

test('a run of ten batches, three an execution, continues as new with its cursor and totals', async () => {
  // Ten batches cross three continue-as-new boundaries; more records would only take longer.
  const { manifest, oldFaceIds } = await writeRecords(resources, photos(500));
  const collectionId = target();

  const { firstRunId, summary } = await withWorkers(async () => {
    const handle = await start(
      runInput(manifest, collectionId, { batchSize: 50, batchesPerExecution: 3, imagesInFlightPerBatch: 25 }),
    );
    return { firstRunId: handle.firstExecutionRunId, summary: await handle.result() };
  });

  expect(summary).toMatchObject({
    status: 'completed',
    images: 500,
    faces: 500,
    matched: 500,
    dlq: 0,
    resultsWritten: 500,
  });
  const first = await env.client.workflow.getHandle(summary.workflowId, firstRunId).describe();
  expect(first.status.name).toBe('CONTINUED_AS_NEW');
  const rows = await resultRows(resources, summary.workflowId);
  expect(new Set(rows.map((row) => row.OldFaceId))).toEqual(new Set(oldFaceIds));
  await expectConsistent(summary.workflowId, collectionId, summary);
}, 600_000);

test('a run with no batch or no image in flight, or a threshold outside IoU, fails at once with INVALID_RUN_INPUT and reads nothing', async () => {
  const manifest = { Bucket: resources.config.bucket, Key: `tests/none-${randomUUID()}.jsonl` };
  const settings: Partial<ReindexCollectionInput>[] = [
    { batchesInFlight: 0 },
    { imagesInFlightPerBatch: 0 },
    { options: { iouThreshold: 0, qualityFilter: 'NONE', maxFaces: undefined, unmatched: 'delete' } },
  ];

  const failures = await withWorkers(() =>
    Promise.all(
      settings.map(async (changes) =>
        (await start(runInput(manifest, target(), changes))).result().catch((error: unknown) => error),
      ),
    ),
  );

  for (const failure of failures) {
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({
      type: ReasonCode.InvalidRunInput,
      nonRetryable: true,
    });
  }
  expect(((failures[0] as WorkflowFailedError).cause as Error).message).toBe(
    "the run's input is not valid: batchesInFlight must be a whole number from 1, not 0",
  );
});

test('a cancelled run stops starting images, and leaves results, DLQ and target consistent', async () => {
  await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 100, p99Ms: 150 } } });
  const { manifest } = await writeRecords(resources, photos(40));
  const collectionId = target();

  const handle = await withWorkers(async () => {
    const started = await start(
      runInput(manifest, collectionId, { batchSize: 10, batchesInFlight: 1, imagesInFlightPerBatch: 2 }),
    );
    await eventually(async () => (await started.query(progressQuery)).batches.done >= 1);
    await started.cancel();
    const failure = await started.result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    return started;
  });

  expect((await handle.describe()).status.name).toBe('CANCELLED');
  const { Body } = await resources.aws.s3.send(
    new GetObjectCommand({ Bucket: resources.config.bucket, Key: reportKey(handle.workflowId, 'json') }),
  );
  const summary = JSON.parse((await Body?.transformToString()) ?? '') as RunSummary;
  expect(summary.status).toBe('cancelled');
  expect(summary.notProcessed).toBeGreaterThan(0);
  expect(summary.images + summary.notProcessed).toBe(40);
  expect(summary.matched).toBe(summary.images);
  await expectConsistent(handle.workflowId, collectionId, summary);
  expect(await takeReview(resources)).toEqual([]);
});

/**
 * The reindexImage activities a batch scheduled while its run held it back for the drain: from the
 * first workflow task after a hold reached the batch until the release reached it. Also how many
 * holds the batch took, so a run that never held cannot pass for one that held correctly.
 */
async function imagesStartedWhileHeld(workflowId: string): Promise<{ holds: number; started: number }> {
  const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const decoded = (payloads: { data?: Uint8Array | null }[] | null | undefined) =>
    JSON.parse(Buffer.from(payloads?.[0]?.data ?? []).toString()) as unknown;
  const input = decoded(events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads) as { heldBack?: boolean };
  let held = input.heldBack ?? false;
  // A workflow task that began before the signal arrived could not have seen it.
  let heldFromTask = held ? 0 : Number.POSITIVE_INFINITY;
  let holds = held ? 1 : 0;
  let started = 0;
  for (const event of events) {
    const id = Number(event.eventId);
    const signaled = event.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName === 'resultsBacklog') {
      held = (decoded(signaled.input?.payloads) as { held: boolean }).held;
      heldFromTask = held ? id : Number.POSITIVE_INFINITY;
      if (held) holds += 1;
    }
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (held && scheduled?.activityType?.name === 'reindexImage') {
      const taskStarted = Number(scheduled.workflowTaskCompletedEventId) - 1;
      if (taskStarted > heldFromTask) started += 1;
    }
  }
  return { holds, started };
}

test('rows waiting too long in the results queue hold back new images until the drain catches up, and every face is migrated once', async () => {
  // Images slow enough that rows wait in the queue while others are still to start.
  await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 400, p99Ms: 500 } } });
  const { manifest } = await writeRecords(resources, photos(40));
  const collectionId = target();

  const summary = await withWorkers(
    async () =>
      (
        await start(runInput(manifest, collectionId, { batchSize: 20, batchesInFlight: 2, imagesInFlightPerBatch: 1 }))
      ).result(),
    // Any row waits longer than this, so the run holds back whenever a drain takes rows.
    { resultsWaitLimitMs: 1 },
  );

  expect(summary).toMatchObject({ status: 'completed', images: 40, matched: 40, dlq: 0, resultsWritten: 40 });
  expect(summary.resultsHolds).toBeGreaterThan(0);
  const batches = await Promise.all(
    [0, 1].map((batch) => imagesStartedWhileHeld(`${summary.workflowId}/batch-${batch}`)),
  );
  expect(batches.reduce((holds, batch) => holds + batch.holds, 0)).toBeGreaterThan(0);
  expect(batches.map((batch) => batch.started)).toEqual([0, 0]);
  await expectConsistent(summary.workflowId, collectionId, summary);
}, 300_000);

describe('failures that end', () => {
  /**
   * Starts a run held before its first batch, breaks something with `fault`, resumes it, and
   * returns its summary and what reached review.
   */
  async function runWithFault(
    input: ReindexCollectionInput,
    fault: (workflowId: string) => Promise<void>,
    whileRunning?: (handle: Awaited<ReturnType<typeof start>>) => Promise<void>,
  ) {
    return withWorkers(async () => {
      const handle = await start(input);
      await handle.signal(pauseSignal);
      await eventually(async () => (await handle.query(progressQuery)).phase === 'indexing');
      await fault(handle.workflowId);
      await handle.signal(resumeSignal);
      await whileRunning?.(handle);
      const summary = await handle.result();
      return { summary, reviewed: await takeReview(resources) };
    });
  }

  test('a batch whose chunk is not JSON fails at its first attempt, not after half an hour of retries, and costs its own images, not the run', async () => {
    const { manifest } = await writeRecords(resources, photos(9));
    const collectionId = target();

    const { summary, reviewed } = await runWithFault(
      runInput(manifest, collectionId, { batchSize: 3, batchesInFlight: 1 }),
      async (workflowId) => {
        await resources.aws.s3.send(
          new PutObjectCommand({ Bucket: resources.config.bucket, Key: chunkKey(workflowId, 1), Body: 'not a chunk' }),
        );
      },
    );

    expect(summary).toMatchObject({
      status: 'completed',
      images: 6,
      matched: 6,
      notProcessed: 3,
      dlqByReason: { [ReasonCode.BatchFailed]: 1 },
    });
    expect(reviewed).toHaveLength(1);
    expect(reviewed[0]).toMatchObject({ reason: ReasonCode.BatchFailed, runId: summary.workflowId });
    expect(reviewed[0]?.detail).toMatch(/^batch 2 failed: .*JSON.*; its chunk s3:\/\/.* cannot be read/);
    const events = (await env.client.workflow.getHandle(`${summary.workflowId}/batch-1`).fetchHistory()).events ?? [];
    expect(
      events.flatMap((event) =>
        event.activityTaskStartedEventAttributes ? [Number(event.activityTaskStartedEventAttributes.attempt)] : [],
      ),
    ).toEqual([1]);
    await expectConsistent(summary.workflowId, collectionId, summary);
  }, 300_000);

  test('an image the service keeps failing goes to review as RETRIES_EXHAUSTED once --retry-minutes pass, and the run ends', async () => {
    const { manifest } = await writeRecords(resources, photos(4));
    const collectionId = target();

    const { summary, reviewed } = await runWithFault(
      runInput(manifest, collectionId, { retryMinutes: 0.05, pauseAfterFailures: 0 }),
      () => rekognitionAdmin('settings', 'PUT', { faultRate: 1 }).then(() => undefined),
      // Once every image has given up, the service recovers for the run's later phases (reconcile lists faces).
      async (handle) => {
        await eventually(async () => (await handle.query(progressQuery)).totals.images === 4, 60_000);
        await rekognitionAdmin('settings', 'PUT', { faultRate: 0 });
      },
    );

    expect(summary).toMatchObject({
      status: 'completed',
      images: 4,
      matched: 0,
      dlq: 4,
      dlqByReason: { [ReasonCode.RetriesExhausted]: 4 },
    });
    expect(reviewed.map((item) => item.reason)).toEqual(Array(4).fill(ReasonCode.RetriesExhausted));
    expect(reviewed[0]?.detail).toMatch(/attempts over \d+ min; the last failed with InternalServerError/);
    expect(await facesIn(resources, collectionId)).toEqual([]);
  }, 120_000);
});
