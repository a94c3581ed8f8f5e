/**
 * The faults a migration of hours meets, each during a whole run of the same synthetic records
 * file: a worker SIGKILLed as the run indexes its images and started again, the Temporal server stopped and
 * started on its SQLite file, a Rekognition that throttles and fails, and a drain killed between
 * its DynamoDB write and its SQS delete. After each, the run's promises hold (harness/invariants)
 * and its summary counts what a fault-free run of the file counts.
 *
 * The file gets its own dev server and rekognition-local, since it stops one and disturbs the
 * other; moto is the stack's. Each fault strikes a run of its own, and all of them one more run:
 * over 120 images in `npm test`, over 2,000 with five kills in `npm run test:chaos`
 * (REINDEX_CHAOS_IMAGES, REINDEX_CHAOS_KILLS, REINDEX_CHAOS_FACE_IDS).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { ReasonCode } from '../../src/domain/reasons';
import { type RunSummary, taskQueues } from '../../src/shared';
import { reindexCollection } from '../../src/workflows';
import { type RunningDevServer, startDevServer } from '../../harness/dev-server';
import { type FaultProxy, startFaultProxy } from '../../harness/fault-proxy';
import { accountForRun, type RunAccount } from '../../harness/invariants';
import { useLocalStack } from '../../harness/local-stack';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';
import {
  createRunResources,
  type OldFace,
  type PhotoSpec,
  type RunResources,
  runInput,
  writeRecords,
} from '../../harness/runs';
import { type WorkerProcess, workerProcess } from '../../harness/worker-process';
import { sharedWorkflowBundle } from '../../harness/workflows-bundle';

/** `npm test` migrates 120 images a run; `npm run test:chaos` 2,000 with five kills. */
const IMAGES = Number(process.env.REINDEX_CHAOS_IMAGES ?? 120);
const KILLS = Number(process.env.REINDEX_CHAOS_KILLS ?? 2);
/**
 * What rekognition-local answers for a face indexed again while faults strike. `fresh` leaves a
 * killed attempt's faces behind for reconcile; `reuse` (AWS's way, and the stack's, under which the
 * other suites run) answers the retry with them. npm test runs `fresh`; npm run test:chaos both.
 */
const FACE_ID_BEHAVIOURS = (process.env.REINDEX_CHAOS_FACE_IDS ?? 'fresh').split(',') as ('reuse' | 'fresh')[];
/** Four batches in flight at once, whatever the size of the file. */
const BATCH_SIZE = Math.max(10, Math.ceil(IMAGES / 8));

let devServer: RunningDevServer;
let rekognition: RunningRekognition;
let sqsProxy: FaultProxy;
let client: Client;
let workDir: string;
let bundlePath: string;
let writer: RunResources;
let records: { manifest: { Bucket: string; Key: string }; oldFaces: OldFace[] };
let faultFree: { summary: RunSummary; account: RunAccount };
/** What each run went through, printed at the end for the figures in docs/testing.md. */
const figures: Record<string, unknown>[] = [];

/** Kept for the end, and shown at once on stderr, which jest does not hold back: a heavy run takes an hour. */
function note(figure: Record<string, unknown>): void {
  figures.push(figure);
  process.stderr.write(`chaos: ${JSON.stringify(figure)}\n`);
}

const box = (left: number, top: number, size = 0.3): DeclaredFace['box'] => [left, top, size, size];

/**
 * Every kind of outcome, in a fixed mix: matched faces (some of users), two faces an image, an
 * extra new face to delete, no face found, an old box the new model does not overlap, a missing
 * image. Photos repeat, so the file has many records and few uploads.
 */
function photoOf(i: number): PhotoSpec {
  const person = `p${i % 7}`;
  switch (i % 20) {
    case 0:
      return { faces: [], oldFaces: [{ person, box: box(0.2, 0.2) }] };
    case 1:
      return { faces: [{ person, box: box(0.6, 0.6) }], oldFaces: [{ person, box: box(0.05, 0.05, 0.2) }] };
    case 2:
      return { faces: [{ person, box: box(0.2, 0.2) }], missing: true };
    case 3:
      return {
        faces: [
          { person, box: box(0.1, 0.1) },
          { person: 'stranger', box: box(0.6, 0.6) },
        ],
        oldFaces: [{ person, box: box(0.1, 0.1) }],
      };
    case 4:
    case 5:
      return {
        faces: [
          { person, box: box(0.05, 0.3, 0.25) },
          { person: `${person}-friend`, box: box(0.55, 0.3, 0.25) },
        ],
      };
    default:
      // A user's faces are one person's: AssociateFaces refuses a face unlike the user's others.
      return { faces: [{ person, box: box(0.3, 0.2, 0.35) }], ...(i % 3 === 0 ? { userId: `user-${person}` } : {}) };
  }
}

beforeAll(async () => {
  const stack = useLocalStack();
  workDir = mkdtempSync(path.join(tmpdir(), 'chaos-'));
  // The worker processes load the bundle jest's global setup made; a file run alone bundles its own.
  const shared = sharedWorkflowBundle();
  bundlePath = shared?.codePath ?? path.join(workDir, 'workflows.js');
  if (shared === undefined) {
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../src/workflows'),
      logger: new DefaultLogger('WARN'),
    });
    writeFileSync(bundlePath, bundle.code);
  }
  [devServer, rekognition, sqsProxy] = await Promise.all([
    startDevServer(),
    startRekognitionLocal(),
    startFaultProxy(stack.AWS_ENDPOINT_URL ?? ''),
  ]);
  client = new Client({ connection: await Connection.connect({ address: devServer.address }) });
  writer = await createRunResources();
  const invalid = JSON.stringify({ Bucket: writer.config.bucket, Key: 'nobody.png', Faces: [] });
  records = await writeRecords(
    writer,
    Array.from({ length: IMAGES }, (_, i) => photoOf(i)),
    [invalid],
  );
  faultFree = await migrate('fault-free', noFaults);
}, 600_000);

afterAll(async () => {
  console.log(
    `chaos figures (${IMAGES} images, ${records?.oldFaces.length} old faces):\n${figures.map((line) => JSON.stringify(line)).join('\n')}`,
  );
  await client?.connection.close();
  await Promise.all([devServer?.release(), rekognition?.stop(), sqsProxy?.close(), writer?.release()]);
  rmSync(workDir, { recursive: true, force: true });
});

afterEach(async () => {
  await rekognition.admin('PUT', '/_admin/settings', { latency: {}, throttleRate: 0, faultRate: 0 });
});

interface Migration {
  workflowId: string;
  handle: WorkflowHandle<typeof reindexCollection>;
  worker: WorkerProcess;
  resources: RunResources;
  /** IndexFaces calls rekognition-local had answered when the run started. */
  indexedBefore: number;
}

/** Polls instead of long-polling, so a server that goes away and comes back is waited out. */
async function ended(handle: WorkflowHandle): Promise<void> {
  for (;;) {
    try {
      if ((await handle.describe()).status.name !== 'RUNNING') return;
    } catch {
      // The server is down; it is meant to come back.
    }
    await sleep(500);
  }
}

async function stillRunning(handle: WorkflowHandle): Promise<boolean> {
  return (await handle.describe()).status.name === 'RUNNING';
}

const noFaults = () => Promise.resolve();

/**
 * Keeps the histories of a run and of its first batch, as the Temporal CLI shows them, for the
 * replay test (test/workflows/replay.test.ts): a run through crashes has events no clean run has.
 */
function recordHistories(dir: string, name: string, workflowId: string): void {
  const histories: [id: string, file: string][] = [
    [workflowId, `chaos-${name}-run.json`],
    [`${workflowId}/batch-0`, `chaos-${name}-batch.json`],
  ];
  for (const [id, file] of histories) {
    const shown = spawnSync(
      path.resolve(__dirname, '../../.tools/bin/temporal'),
      ['workflow', 'show', '--address', devServer.address, '--workflow-id', id, '-o', 'json'],
      {
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    writeFileSync(path.join(dir, file), shown.stdout);
  }
}

/** Runs the records file on a fresh worker process, queues and table, with `faults` acting during the run. */
async function migrate(
  name: string,
  faults: (migration: Migration) => Promise<void>,
): Promise<{ summary: RunSummary; account: RunAccount; worker: WorkerProcess }> {
  const resources = await createRunResources();
  const taskQueue = `chaos-${randomUUID().slice(0, 8)}`;
  const worker = workerProcess(
    {
      ...process.env,
      TEMPORAL_ADDRESS: devServer.address,
      AWS_ENDPOINT_URL_REKOGNITION: rekognition.endpoint,
      AWS_ENDPOINT_URL_SQS: sqsProxy.endpoint,
      REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
      REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
      REINDEX_RESULTS_TABLE: resources.config.resultsTable,
      REINDEX_TASK_QUEUE: taskQueue,
      REINDEX_TPS: '500',
      TEST_ORPHAN_GRACE_MS: '3000',
      TEST_WORKFLOW_BUNDLE: bundlePath,
    },
    path.join(workDir, `${name}-worker.log`),
  );
  try {
    await worker.start();
    const workflowId = `chaos-${name}-${randomUUID()}`;
    const target = `chaos-${name}-${randomUUID()}`;
    const indexedBefore = await indexFacesAnswered();
    const startedAt = Date.now();
    const handle = await client.workflow.start(reindexCollection, {
      taskQueue: taskQueues(taskQueue).control,
      workflowId,
      args: [
        runInput(records.manifest, target, { batchSize: BATCH_SIZE, batchesInFlight: 4, imagesInFlightPerBatch: 16 }),
      ],
    });
    await faults({ workflowId, handle, worker, resources, indexedBefore });
    await ended(handle);
    const summary = await handle.result();
    if (process.env.REINDEX_RECORD_HISTORIES) recordHistories(process.env.REINDEX_RECORD_HISTORIES, name, workflowId);
    await rekognition.admin('PUT', '/_admin/settings', { latency: {}, throttleRate: 0, faultRate: 0 });
    const account = await accountForRun(
      { ...resources, aws: { ...resources.aws, rekognition: rekognition.client } },
      records.oldFaces,
      summary,
    );
    note({
      run: name,
      seconds: Math.round((Date.now() - startedAt) / 1000),
      workerStarts: worker.starts,
      matched: summary.matched,
      dlq: summary.dlq,
      rows: account.rows.length,
      reviewMessages: account.reviewMessages,
      orphansDeleted: summary.orphansDeleted,
      problems: account.problems.length,
    });
    return { summary, account, worker };
  } finally {
    await worker.stop();
    await resources.release();
  }
}

/** The summary's counts of what became of the file: those a fault must not change. */
function outcomeCounts(summary: RunSummary) {
  const {
    images,
    faces,
    matched,
    unmatchedOld,
    unmatchedNewDeleted,
    unmatchedNewKept,
    notProcessed,
    dlq,
    dlqByReason,
    invalidRecords,
    resultsWritten,
    usersCreated,
    facesAssociated,
    status,
  } = summary;
  return {
    status,
    images,
    faces,
    matched,
    unmatchedOld,
    unmatchedNewDeleted,
    unmatchedNewKept,
    notProcessed,
    dlq,
    dlqByReason,
    invalidRecords,
    resultsWritten,
    usersCreated,
    facesAssociated,
  };
}

/** Rekognition's counters of throttled and failed calls, summed over operations. */
async function injectedByRekognition(): Promise<{ throttled: number; errors: number }> {
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Record<
    string,
    { throttled: number; errors: number }
  >;
  return Object.values(counters).reduce(
    (sum, counts) => ({ throttled: sum.throttled + counts.throttled, errors: sum.errors + counts.errors }),
    {
      throttled: 0,
      errors: 0,
    },
  );
}

/** IndexFaces calls rekognition-local has answered: each an image indexed, or indexed again. */
async function indexFacesAnswered(): Promise<number> {
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Record<string, { succeeded: number }>;
  return counters.IndexFaces?.succeeded ?? 0;
}

/** Waits until rekognition-local has answered `count` IndexFaces calls in all; false if the run ended first. */
async function indexedUpTo(handle: WorkflowHandle, count: number): Promise<boolean> {
  while ((await indexFacesAnswered()) < count) {
    if (!(await stillRunning(handle))) return false;
    await sleep(200);
  }
  return stillRunning(handle);
}

/** The file's images in the bucket: a run ends only after indexing each of them at least once. */
const IMAGES_IN_BUCKET = Array.from({ length: IMAGES }, (_, i) => photoOf(i)).filter((photo) => !photo.missing).length;

/**
 * Kills the worker `kills` times, spread evenly over the images the run has yet to index, starting
 * it again each time. Each kill is due before the last image is indexed, so it strikes a running
 * run at any pace of the machine. Returns how many it made.
 */
async function killAsImagesAreIndexed({ handle, worker, indexedBefore }: Migration, kills: number): Promise<number> {
  const now = await indexFacesAnswered();
  // Images indexed again after a kill count too: fewer seem left than are, and the kills come early.
  const left = Math.max(kills + 1, IMAGES_IN_BUCKET - (now - indexedBefore));
  let killed = 0;
  while (killed < kills) {
    if (!(await indexedUpTo(handle, now + Math.floor((left * (killed + 1)) / (kills + 1))))) break;
    await worker.kill();
    killed += 1;
    await worker.start();
  }
  return killed;
}

/**
 * Once `images` more are indexed, stops the server for 3 s and starts it on its SQLite file;
 * false if the run ended first.
 */
async function restartServerMidRun({ handle }: Migration, images: number): Promise<boolean> {
  if (!(await indexedUpTo(handle, (await indexFacesAnswered()) + images))) return false;
  await devServer.stop();
  await sleep(3_000);
  await devServer.start();
  return true;
}

/** Kills the worker as the drain deletes its first results messages, after writing their rows, and starts it again. */
async function killDrainBeforeDelete({ worker, resources }: Migration): Promise<void> {
  await new Promise<void>((killed) => {
    sqsProxy.arm(
      (call) => call.operation === 'DeleteMessageBatch' && call.body.QueueUrl === resources.config.resultsQueueUrl,
      async () => {
        await worker.kill();
        killed();
      },
    );
  });
  await worker.start();
}

const degradedRekognition = { throttleRate: 0.3, faultRate: 0.05, latency: { '*': { medianMs: 40, p99Ms: 1_500 } } };

test('the fault-free run keeps every promise and meets every kind of outcome', () => {
  const { summary, account } = faultFree;

  expect(account.problems).toEqual([]);
  expect(summary.status).toBe('completed');
  expect(summary.images).toBe(IMAGES);
  expect(Object.keys(summary.dlqByReason).sort()).toEqual(
    [
      ReasonCode.ImageNotFound,
      ReasonCode.InvalidRecord,
      ReasonCode.IouBelowThreshold,
      ReasonCode.NoFaceDetected,
    ].sort(),
  );
  expect(summary.unmatchedNewDeleted).toBeGreaterThan(0);
  expect(summary.usersCreated).toBeGreaterThan(0);
});

describe.each(FACE_ID_BEHAVIOURS)('with FaceIds answered as %s', (faceIds) => {
  beforeAll(async () => {
    await rekognition.admin('PUT', '/_admin/settings', { faceIds });
  });

  test('every fault in one run: a degraded Rekognition, the drain killed, the worker killed, the server restarted', async () => {
    const before = await injectedByRekognition();
    const happened = { drainKilled: false, killed: 0, serverRestarted: false };
    const { summary, account, worker } = await migrate(`all-faults-${faceIds}`, async (migration) => {
      await rekognition.admin('PUT', '/_admin/settings', degradedRekognition);
      // The restart comes first: five images in, whatever the machine's pace, it is mid-run.
      happened.serverRestarted = await restartServerMidRun(migration, 5);
      await killDrainBeforeDelete(migration);
      happened.drainKilled = true;
      happened.killed = await killAsImagesAreIndexed(migration, 1);
    });
    const after = await injectedByRekognition();
    note({
      run: `all-faults-${faceIds}`,
      ...happened,
      throttled: after.throttled - before.throttled,
      errors: after.errors - before.errors,
    });

    expect(happened).toEqual({ drainKilled: true, killed: 1, serverRestarted: true });
    // Started, then again after the drain was killed and after the SIGKILL.
    expect(worker.starts).toBe(3);
    expect(after.throttled - before.throttled).toBeGreaterThan(IMAGES / 10);
    expect(account.problems).toEqual([]);
    expect(outcomeCounts(summary)).toEqual(outcomeCounts(faultFree.summary));
  }, 900_000);

  test(`a worker SIGKILLed ${KILLS} times as the run indexes and restarted loses and doubles nothing`, async () => {
    let kills = 0;
    const { summary, account, worker } = await migrate(`sigkill-${faceIds}`, async (migration) => {
      await rekognition.admin('PUT', '/_admin/settings', { latency: { IndexFaces: { medianMs: 150, p99Ms: 400 } } });
      kills = await killAsImagesAreIndexed(migration, KILLS);
    });

    expect(kills).toBe(KILLS);
    expect(worker.starts).toBe(KILLS + 1);
    expect(account.problems).toEqual([]);
    expect(outcomeCounts(summary)).toEqual(outcomeCounts(faultFree.summary));
  }, 1_800_000);

  test('the Temporal server stopped and started again mid-run on its SQLite file loses and doubles nothing', async () => {
    let restarted = false;
    const { summary, account } = await migrate(`server-restart-${faceIds}`, async (migration) => {
      await rekognition.admin('PUT', '/_admin/settings', { latency: { IndexFaces: { medianMs: 100, p99Ms: 300 } } });
      restarted = await restartServerMidRun(migration, IMAGES / 3);
    });

    expect(restarted).toBe(true);
    expect(account.problems).toEqual([]);
    expect(outcomeCounts(summary)).toEqual(outcomeCounts(faultFree.summary));
  }, 1_800_000);

  test('a Rekognition throttling 30% of calls, failing 5% and slow in spikes loses and doubles nothing', async () => {
    const before = await injectedByRekognition();
    const { summary, account } = await migrate(`rekognition-faults-${faceIds}`, () =>
      rekognition.admin('PUT', '/_admin/settings', degradedRekognition).then(() => undefined),
    );
    const after = await injectedByRekognition();
    note({
      run: `rekognition-faults-${faceIds}`,
      throttled: after.throttled - before.throttled,
      errors: after.errors - before.errors,
    });

    expect(after.throttled - before.throttled).toBeGreaterThan(IMAGES / 10);
    expect(after.errors - before.errors).toBeGreaterThan(0);
    expect(account.problems).toEqual([]);
    expect(outcomeCounts(summary)).toEqual(outcomeCounts(faultFree.summary));
  }, 1_800_000);

  test('the results drain killed between its DynamoDB write and its SQS delete doubles nothing', async () => {
    const { summary, account } = await migrate(`drain-killed-${faceIds}`, killDrainBeforeDelete);

    expect(account.problems).toEqual([]);
    expect(outcomeCounts(summary)).toEqual(outcomeCounts(faultFree.summary));
  }, 1_800_000);
});
