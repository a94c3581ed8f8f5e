/**
 * The reindex workflows on Temporal's time-skipping server, with every activity held in memory
 * (harness/fake-activities.ts): batches per chunk, pause over days, throttling over a long backoff,
 * continue-as-new, cancellation, holding back for the drain, duplicates and failures that end, each
 * checked by what a user would look at afterwards. The same behaviours with the real activities
 * against the local stack are in test/e2e.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Worker, type WorkflowBundleOption } from '@temporalio/worker';
import { ReasonCode } from '../../src/domain/reasons';
import {
  pauseSignal,
  progressQuery,
  type ReindexCollectionInput,
  resumeSignal,
  type RunSummary,
  taskQueues,
} from '../../src/shared';
import type { reindexCollection } from '../../src/workflows';
import { eventually, registerSearchAttributes, runInput } from '../../harness/runs';
import { FakeMigration, type FakeImage, type FakeMigrationOptions } from '../../harness/fake-activities';
import { TEST_SERVER_EXECUTABLE } from '../../harness/tools';
import { sharedWorkflowBundle } from '../../harness/workflows-bundle';

const DAY_MS = 24 * 60 * 60 * 1000;

let env: TestWorkflowEnvironment;
let workflowBundle: WorkflowBundleOption;
/** A task queue of each test's own: a worker a failed test left polling takes no other test's tasks. */
let taskQueue: string;

beforeEach(() => {
  taskQueue = `reindex-${randomUUID()}`;
});

beforeAll(async () => {
  [env, workflowBundle] = await Promise.all([
    TestWorkflowEnvironment.createTimeSkipping({
      server: { executable: { type: 'existing-path', path: TEST_SERVER_EXECUTABLE } },
    }),
    sharedWorkflowBundle() ??
      bundleWorkflowCode({ workflowsPath: require.resolve('../../src/workflows'), logger: new DefaultLogger('WARN') }),
  ]);
  await registerSearchAttributes(env);
}, 120_000);

afterAll(async () => {
  await env?.teardown();
});

/** Runs `work` while workers with `migration`'s activities poll both task queues, then shuts them down. */
async function withWorkers<T>(migration: FakeMigration, work: () => Promise<T>): Promise<T> {
  const queues = taskQueues(taskQueue);
  const { control, indexFaces } = migration.activities;
  const workers = await Promise.all([
    Worker.create({
      connection: env.nativeConnection,
      taskQueue: queues.control,
      workflowBundle,
      activities: control,
    }),
    Worker.create({ connection: env.nativeConnection, taskQueue: queues.indexFaces, activities: indexFaces }),
  ]);
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
    taskQueue,
    workflowId: `reindex-${randomUUID()}`,
    args: [input],
  });
}

const target = () => `target-${randomUUID()}`;
/** `count` images of one old face each. */
const photos = (count: number): FakeImage[] => Array.from({ length: count }, () => ({ oldFaceIds: [randomUUID()] }));
const oldFaceIdsOf = (images: FakeImage[]) => images.flatMap((image) => image.oldFaceIds);

/** Every old face has a row; the target holds exactly the faces the rows name; no row is left in the queue. */
function expectConsistent(
  migration: FakeMigration,
  runId: string,
  collectionId: string,
  summary: Pick<RunSummary, 'matched'>,
): void {
  const rows = migration.rowsOf(runId);
  expect(rows).toHaveLength(summary.matched);
  expect(migration.facesIn(collectionId)).toEqual(rows.map((row) => row.FaceId).sort());
  expect(migration.queued).toBe(0);
}

test('one batch child per chunk, with ids derived from the run, and every face migrated once', async () => {
  const migration = new FakeMigration();
  const images = photos(7);
  const manifest = migration.writeRecords(images);
  const collectionId = target();

  const { handle, summary } = await withWorkers(migration, async () => {
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
  const rows = migration.rowsOf(handle.workflowId);
  expect(rows.map((row) => row.OldFaceId).sort()).toEqual(oldFaceIdsOf(images).sort());
  expect(migration.reports.get(handle.workflowId)).toMatchObject({ status: 'completed', matched: 7 });
  expectConsistent(migration, handle.workflowId, collectionId, summary);
});

// Paused from its first moment: the time-skipping server fails the workflow task that cancels an
// activity as it completes (ACTIVITY_UNKNOWN), so a pause mid-batch, which calls back queued
// images, is tested on the dev server (test/e2e/failures.test.ts).
test('a paused run starts no IndexFaces for days, its drain idle, then resumes and migrates every image', async () => {
  const migration = new FakeMigration();
  const manifest = migration.writeRecords(photos(8));
  const collectionId = target();

  const summary = await withWorkers(migration, async () => {
    const handle = await env.client.workflow.signalWithStart<typeof reindexCollection, []>('reindexCollection', {
      taskQueue,
      workflowId: `reindex-${randomUUID()}`,
      args: [runInput(manifest, collectionId, { imagesInFlightPerBatch: 1 })],
      signal: pauseSignal,
    });
    await env.sleep('3 days');
    expect(migration.indexFacesCalls).toBe(0);
    expect(await handle.query(progressQuery)).toMatchObject({ phase: 'indexing', paused: true });
    expect((await handle.describe()).historyLength).toBeLessThan(400);
    await handle.signal(resumeSignal);
    return handle.result();
  });

  expect(summary).toMatchObject({ status: 'completed', images: 8, matched: 8, dlq: 0 });
  expect(summary.durationMs).toBeGreaterThanOrEqual(3 * DAY_MS);
  expect(migration.indexFacesCalls).toBe(8);
  expectConsistent(migration, summary.workflowId, collectionId, summary);
});

test('throttling is retried over a long backoff, never sent to the DLQ', async () => {
  const migration = new FakeMigration();
  const manifest = migration.writeRecords(photos(3));
  const collectionId = target();
  migration.throttled = true;

  const summary = await withWorkers(migration, async () => {
    const handle = await start(runInput(manifest, collectionId));
    await env.sleep('30 minutes');
    expect(await handle.query(progressQuery)).toMatchObject({ phase: 'indexing' });
    expect(migration.indexFacesCalls).toBeGreaterThan(3);
    migration.throttled = false;
    return handle.result();
  });

  expect(summary).toMatchObject({ status: 'completed', images: 3, matched: 3, dlq: 0 });
  expect(summary.durationMs).toBeGreaterThanOrEqual(30 * 60 * 1000);
  expect(migration.review).toEqual([]);
  expectConsistent(migration, summary.workflowId, collectionId, summary);
});

test('a run of ten batches, three an execution, continues as new with its cursor and totals', async () => {
  const migration = new FakeMigration();
  const images = photos(50);
  const manifest = migration.writeRecords(images);
  const collectionId = target();

  const { firstRunId, summary } = await withWorkers(migration, async () => {
    const handle = await start(
      runInput(manifest, collectionId, { batchSize: 5, batchesPerExecution: 3, imagesInFlightPerBatch: 2 }),
    );
    return { firstRunId: handle.firstExecutionRunId, summary: await handle.result() };
  });

  expect(summary).toMatchObject({
    status: 'completed',
    images: 50,
    faces: 50,
    matched: 50,
    dlq: 0,
    resultsWritten: 50,
  });
  const first = await env.client.workflow.getHandle(summary.workflowId, firstRunId).describe();
  expect(first.status.name).toBe('CONTINUED_AS_NEW');
  const rows = migration.rowsOf(summary.workflowId);
  expect(new Set(rows.map((row) => row.OldFaceId))).toEqual(new Set(oldFaceIdsOf(images)));
  expect(migration.indexFacesCalls).toBe(50);
  expectConsistent(migration, summary.workflowId, collectionId, summary);
});

test("rows written are the rows in the table, whatever the drains counted; runs before that count keep the drains' sum", async () => {
  const counted = async (options: FakeMigrationOptions) => {
    const migration = new FakeMigration(options);
    const manifest = migration.writeRecords(photos(7));
    return withWorkers(migration, async () => (await start(runInput(manifest, target(), { batchSize: 3 }))).result());
  };

  expect(await counted({ drainCountsLost: true })).toMatchObject({ matched: 7, resultsWritten: 7 });
  expect(await counted({ usersCountNoRows: true })).toMatchObject({ matched: 7, resultsWritten: 7 });
  expect(await counted({ drainCountsLost: true, usersCountNoRows: true })).toMatchObject({
    matched: 7,
    resultsWritten: 0,
  });
});

test('a run with no batch or no image in flight, or a threshold outside IoU, fails at once with INVALID_RUN_INPUT and reads nothing', async () => {
  const migration = new FakeMigration();
  const manifest = migration.writeRecords(photos(2));
  const settings: Partial<ReindexCollectionInput>[] = [
    { batchesInFlight: 0 },
    { imagesInFlightPerBatch: 0 },
    { options: { iouThreshold: 0, qualityFilter: 'NONE', maxFaces: undefined, unmatched: 'delete' } },
  ];

  const failures = await withWorkers(migration, () =>
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
  expect(migration.indexFacesCalls).toBe(0);
  expect(migration.reports.size).toBe(0);
  // The runs fail within a second; the workflow worker then takes 30 s to shut down on the time-skipping server.
}, 120_000);

test('a cancelled run stops starting images, lets those in flight finish, and leaves results, DLQ and target consistent', async () => {
  // The first batch's ten images answer; the next two hold, in flight, until the cancel has reached them.
  const migration = new FakeMigration({ holdIndexFacesAfter: 10 });
  const manifest = migration.writeRecords(photos(40));
  const collectionId = target();

  const handle = await withWorkers(migration, async () => {
    const started = await start(
      runInput(manifest, collectionId, { batchSize: 10, batchesInFlight: 1, imagesInFlightPerBatch: 2 }),
    );
    await eventually(async () => (await started.query(progressQuery)).batches.done >= 1);
    await eventually(() => migration.indexFacesCalls === 12);
    await started.cancel();
    // Both held images were asked to stop before either answers: no cancel races an answer.
    await eventually(async () => {
      const events = (await env.client.workflow.getHandle(`${started.workflowId}/batch-1`).fetchHistory()).events;
      return (events ?? []).filter((event) => event.activityTaskCancelRequestedEventAttributes).length === 2;
    });
    migration.releaseIndexFaces();
    const failure = await started.result().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    return started;
  });

  expect((await handle.describe()).status.name).toBe('CANCELLED');
  const summary = migration.reports.get(handle.workflowId);
  expect(summary).toMatchObject({ status: 'cancelled', images: 12, matched: 12, notProcessed: 28 });
  expect(migration.indexFacesCalls).toBe(12);
  expectConsistent(migration, handle.workflowId, collectionId, { matched: summary?.matched ?? -1 });
  expect(migration.review).toEqual([]);
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
  // Images slow enough that rows wait in the queue while others are still to start; any row waits
  // longer than the limit, so the run holds back whenever a drain takes rows.
  const migration = new FakeMigration({ indexFacesMs: 400, resultsWaitLimitMs: 1 });
  const manifest = migration.writeRecords(photos(40));
  const collectionId = target();

  const summary = await withWorkers(migration, async () =>
    (
      await start(runInput(manifest, collectionId, { batchSize: 20, batchesInFlight: 2, imagesInFlightPerBatch: 1 }))
    ).result(),
  );

  expect(summary).toMatchObject({ status: 'completed', images: 40, matched: 40, dlq: 0, resultsWritten: 40 });
  expect(summary.resultsHolds).toBeGreaterThan(0);
  const batches = await Promise.all(
    [0, 1].map((batch) => imagesStartedWhileHeld(`${summary.workflowId}/batch-${batch}`)),
  );
  expect(batches.reduce((holds, batch) => holds + batch.holds, 0)).toBeGreaterThan(0);
  expect(batches.map((batch) => batch.started)).toEqual([0, 0]);
  expectConsistent(migration, summary.workflowId, collectionId, summary);
  // Images and drains take real time here: on a loaded machine, well past the default minute.
}, 300_000);

test('two records naming one old face, in one batch and across batches: one row each face, the others in review as DUPLICATE_FACE_ID, their new faces deleted', async () => {
  const migration = new FakeMigration();
  const images = photos(6);
  const repeated = [images[0], images[4]].map((image) => ({ oldFaceIds: [...(image?.oldFaceIds ?? [])] }));
  const manifest = migration.writeRecords([...images, ...repeated]);
  const collectionId = target();

  const summary = await withWorkers(migration, async () =>
    (await start(runInput(manifest, collectionId, { batchSize: 4 }))).result(),
  );

  expect(summary).toMatchObject({
    status: 'completed',
    images: 8,
    faces: 8,
    matched: 6,
    dlq: 2,
    dlqByReason: { [ReasonCode.DuplicateFaceId]: 2 },
  });
  expect(migration.review.map((item) => item.reason)).toEqual([ReasonCode.DuplicateFaceId, ReasonCode.DuplicateFaceId]);
  expect(
    migration
      .rowsOf(summary.workflowId)
      .map((row) => row.OldFaceId)
      .sort(),
  ).toEqual(oldFaceIdsOf(images).sort());
  expectConsistent(migration, summary.workflowId, collectionId, summary);
});

test("duplicates another run's drain settled still count as duplicates, not matched: the table says how many", async () => {
  const migration = new FakeMigration({ duplicatesSettledElsewhere: true });
  const images = photos(6);
  const repeated = [images[1], images[5]].map((image) => ({ oldFaceIds: [...(image?.oldFaceIds ?? [])] }));
  const manifest = migration.writeRecords([...images, ...repeated]);
  const collectionId = target();

  const summary = await withWorkers(migration, async () =>
    (await start(runInput(manifest, collectionId, { batchSize: 4 }))).result(),
  );

  expect(summary).toMatchObject({ matched: 6, dlqByReason: { [ReasonCode.DuplicateFaceId]: 2 } });
  expectConsistent(migration, summary.workflowId, collectionId, summary);
});

describe('a results queue other runs keep busy', () => {
  test('a run ends once the table holds every row its batches sent, without waiting for the queue to empty', async () => {
    const migration = new FakeMigration({ busyWindows: Number.MAX_SAFE_INTEGER });
    const images = photos(7);
    const manifest = migration.writeRecords([...images, { oldFaceIds: [...(images[2]?.oldFaceIds ?? [])] }]);
    const collectionId = target();

    const summary = await withWorkers(migration, async () =>
      (await start(runInput(manifest, collectionId, { batchSize: 3 }))).result(),
    );

    expect(summary).toMatchObject({
      status: 'completed',
      matched: 7,
      dlqByReason: { [ReasonCode.DuplicateFaceId]: 1 },
    });
    expect(migration.drainWindows.at(-1)?.accountFor).toEqual({
      rowsSent: 8,
      since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as unknown,
    });
    expectConsistent(migration, summary.workflowId, collectionId, summary);
  });

  test('a run one of whose batches failed cannot count the rows it sent, so it waits for the queue to empty', async () => {
    const migration = new FakeMigration({ busyWindows: 40 });
    const manifest = migration.writeRecords(photos(9));
    const collectionId = target();

    const summary = await withWorkers(migration, async () => {
      const handle = await start(runInput(manifest, collectionId, { batchSize: 3, batchesInFlight: 1 }));
      await handle.signal(pauseSignal);
      await eventually(async () => (await handle.query(progressQuery)).phase === 'indexing');
      migration.breakChunk(handle.workflowId, 1);
      await handle.signal(resumeSignal);
      return handle.result();
    });

    expect(summary).toMatchObject({ status: 'completed', matched: 6, notProcessed: 3 });
    expect(migration.drainWindows.length).toBeGreaterThan(40);
    expect(migration.drainWindows.filter((window) => window.accountFor !== undefined)).toEqual([]);
    expectConsistent(migration, summary.workflowId, collectionId, summary);
  });
});

describe('failures that end', () => {
  /**
   * Starts a run held before its first batch, breaks something with `fault`, resumes it, and
   * returns its summary and what reached review.
   */
  async function runWithFault(
    migration: FakeMigration,
    input: ReindexCollectionInput,
    fault: (workflowId: string) => void,
    whileRunning?: (handle: Awaited<ReturnType<typeof start>>) => Promise<void>,
  ) {
    return withWorkers(migration, async () => {
      const handle = await start(input);
      await handle.signal(pauseSignal);
      await eventually(async () => (await handle.query(progressQuery)).phase === 'indexing');
      fault(handle.workflowId);
      await handle.signal(resumeSignal);
      await whileRunning?.(handle);
      return handle.result();
    });
  }

  test('a batch whose chunk is not JSON fails at its first attempt, not after half an hour of retries, and costs its own images, not the run', async () => {
    const migration = new FakeMigration();
    const manifest = migration.writeRecords(photos(9));
    const collectionId = target();

    const summary = await runWithFault(
      migration,
      runInput(manifest, collectionId, { batchSize: 3, batchesInFlight: 1 }),
      (workflowId) => migration.breakChunk(workflowId, 1),
    );

    expect(summary).toMatchObject({
      status: 'completed',
      images: 6,
      matched: 6,
      notProcessed: 3,
      dlqByReason: { [ReasonCode.BatchFailed]: 1 },
    });
    expect(migration.review).toHaveLength(1);
    expect(migration.review[0]).toMatchObject({ reason: ReasonCode.BatchFailed, runId: summary.workflowId });
    expect(migration.review[0]?.detail).toMatch(/^batch 2 failed: .*JSON.*; its chunk s3:\/\/.* cannot be read/);
    const events = (await env.client.workflow.getHandle(`${summary.workflowId}/batch-1`).fetchHistory()).events ?? [];
    expect(
      events.flatMap((event) =>
        event.activityTaskStartedEventAttributes ? [Number(event.activityTaskStartedEventAttributes.attempt)] : [],
      ),
    ).toEqual([1]);
    expectConsistent(migration, summary.workflowId, collectionId, summary);
  });

  test('an image that fails for good goes to review with its reason, and the run ends', async () => {
    const migration = new FakeMigration();
    const manifest = migration.writeRecords(photos(4));
    const collectionId = target();

    const summary = await runWithFault(
      migration,
      runInput(manifest, collectionId, { pauseAfterFailures: 0 }),
      () => {
        migration.failingWith = ReasonCode.RetriesExhausted;
      },
      // Once every image has given up, the service recovers for the run's later phases.
      async (handle) => {
        await eventually(async () => (await handle.query(progressQuery)).totals.images === 4);
        migration.failingWith = undefined;
      },
    );

    expect(summary).toMatchObject({
      status: 'completed',
      images: 4,
      matched: 0,
      dlq: 4,
      dlqByReason: { [ReasonCode.RetriesExhausted]: 4 },
    });
    expect(migration.review.map((item) => item.reason)).toEqual(Array(4).fill(ReasonCode.RetriesExhausted));
    expect(migration.facesIn(collectionId)).toEqual([]);
  });

  test("batches smaller than the breaker's count trip it together: failures at their ends add up across batches", async () => {
    const migration = new FakeMigration();
    const images = photos(8).map((image) => ({ ...image, missing: true }));
    const manifest = migration.writeRecords(images);
    const collectionId = target();

    const summary = await withWorkers(migration, async () => {
      const handle = await start(
        runInput(manifest, collectionId, {
          batchSize: 2,
          batchesInFlight: 1,
          imagesInFlightPerBatch: 1,
          pauseAfterFailures: 5,
        }),
      );
      await eventually(async () => (await handle.query(progressQuery)).pausedBy !== undefined);
      // Two batches of two went to review; the third made six in a row, and its two are held.
      const progress = await handle.query(progressQuery);
      expect(progress).toMatchObject({
        paused: true,
        pausedBy: { reason: ReasonCode.ImageNotFound, images: 6, batch: 2 },
      });
      // The first of the six: the first image of the first batch.
      expect(progress.pausedBy?.firstError).toBe(`IndexFaces refused ${manifest.Key}/image-0.jpg: IMAGE_NOT_FOUND`);
      expect(migration.review.map((item) => item.reason)).toEqual(Array(4).fill(ReasonCode.ImageNotFound));
      migration.restoreImages();
      await handle.signal(resumeSignal);
      return handle.result();
    });

    expect(summary).toMatchObject({
      status: 'completed',
      images: 8,
      matched: 4,
      dlq: 4,
      dlqByReason: { [ReasonCode.ImageNotFound]: 4 },
      notProcessed: 0,
    });
    expectConsistent(migration, summary.workflowId, collectionId, summary);
  });

  test('cancel ends a run whose every image is throttled, with nothing lost and nothing left in the target', async () => {
    const migration = new FakeMigration();
    const manifest = migration.writeRecords(photos(3));
    const collectionId = target();
    migration.throttled = true;

    const handle = await withWorkers(migration, async () => {
      const started = await start(runInput(manifest, collectionId));
      await eventually(() => migration.indexFacesCalls >= 6);
      await started.cancel();
      await started.result().catch((error: unknown) => error);
      return started;
    });

    expect((await handle.describe()).status.name).toBe('CANCELLED');
    expect(migration.reports.get(handle.workflowId)).toMatchObject({
      status: 'cancelled',
      images: 0,
      notProcessed: 3,
      dlq: 0,
    });
    expect(migration.facesIn(collectionId)).toEqual([]);
  });
});
