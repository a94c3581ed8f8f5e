/**
 * npm run histories:record, with the stack up: runs today's workflows on a real worker and writes
 * their histories, as `temporal workflow show -o json` shows them, to test/workflows/histories/ for
 * the replay test (test/workflows/replay.test.ts). The runs are small and each waits on what it
 * must see happen (an image indexed, a signal in a history), never on the clock:
 *   - a completed run of every kind of record, and its first batch;
 *   - its missing images uploaded and redriven from the review DLQ by `reindex dlq redrive`;
 *   - a run that continues as new while paused and resumed, in its first execution and its second;
 *   - a run paused while two batches are mid-batch, then resumed, and one of those batches;
 *   - a run whose drain settles a second row of one old face, with rows stranded in the results
 *     DLQ, and the drain `reindex dlq requeue-results` starts for them;
 *   - a run cancelled mid-batch, and a batch it cancelled.
 * Files are named `<case>-<date>.json`, so histories of earlier code stay beside the new ones, and
 * the workflow id each replays under is printed for the test's HISTORY_WORKFLOW_IDS.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { temporal } from '@temporalio/proto';
import type { DeclaredFace } from '../rekognition-local/images';
import { syntheticPng } from '../rekognition-local/synthetic-images';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';
import {
  pauseSignal,
  progressQuery,
  type ReindexCollectionInput,
  resumeSignal,
  type RunSummary,
  taskQueues,
} from '../../src/shared';
import type { reindexCollection } from '../../src/workflows';
import '../../harness/quiet-temporal-logs';
import { lastLine, runCli } from '../../harness/cli';
import {
  createRunResources,
  eventually,
  indexFacesCalls,
  type PhotoSpec,
  rekognitionAdmin,
  resultRow,
  type RunResources,
  runInput,
  signedRowMessage,
  writeRecords,
} from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';
import { ROOT } from './settings';

const HISTORIES = path.join(ROOT, 'test', 'workflows', 'histories');
const DATE = new Date().toISOString().slice(0, 10);
/** Long enough for a run: each case waits on events, this only bounds a run that never gets there. */
const WAIT_MS = 120_000;

const { EventType } = temporal.api.enums.v1;

let resources: RunResources;
let worker: RunningWorker;
let client: Client;
/** File name to the workflow id it replays under, printed at the end. */
const recorded: Record<string, string> = {};

const box = (left: number, top: number, size = 0.35): DeclaredFace['box'] => [left, top, size, size];

/** Matched faces, a user's, an image where the new model finds no face, a missing image. */
function photoOf(i: number): PhotoSpec {
  const face = { person: `p${i % 4}`, box: box(0.3, 0.2) };
  switch (i % 6) {
    case 0:
      return { faces: [], oldFaces: [face] };
    case 1:
      return { faces: [face], missing: true };
    case 2:
      return { faces: [face], userId: `user-p${i % 4}` };
    default:
      return { faces: [face] };
  }
}

const photos = (count: number) => Array.from({ length: count }, (_, i) => photoOf(i));

async function record(file: string, workflowId: string, runId?: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  writeFileSync(path.join(HISTORIES, `${file}-${DATE}.json`), historyToJSON(history));
  recorded[`${file}-${DATE}.json`] = workflowId;
}

const newWorkflowId = (name: string) => `history-${name}-${randomUUID().slice(0, 8)}`;

/** Starts a run into a collection named as the run, deleted when the script ends. */
function start(
  workflowId: string,
  manifest: ReindexCollectionInput['manifest'],
  changes: Partial<ReindexCollectionInput>,
) {
  return client.workflow.start<typeof reindexCollection>('reindexCollection', {
    taskQueue: taskQueues(worker.taskQueue).control,
    workflowId,
    args: [runInput(manifest, resources.ownCollection(workflowId), changes)],
  });
}

/** Whether the workflow's history holds a signal of this name: it has taken it. */
async function signalled(workflowId: string, signalName: string): Promise<boolean> {
  const { events } = await client.workflow.getHandle(workflowId).fetchHistory();
  return (events ?? []).some(
    (event) =>
      event.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED &&
      event.workflowExecutionSignaledEventAttributes?.signalName === signalName,
  );
}

/** Resolves once `more` IndexFaces calls were made after this call: the run is indexing. */
async function indexed(more: number): Promise<void> {
  const before = await indexFacesCalls();
  await eventually(async () => (await indexFacesCalls()) >= before + more, WAIT_MS);
}

/** Pauses the run while these batches are mid-batch, waits until each has taken the pause, and resumes it. */
async function pauseAndResume(handle: WorkflowHandle<typeof reindexCollection>, batches: string[]): Promise<void> {
  await indexed(2);
  await handle.signal(pauseSignal);
  await eventually(async () => (await handle.query(progressQuery)).paused, WAIT_MS);
  for (const batch of batches) await eventually(() => signalled(batch, pauseSignal.name), WAIT_MS);
  await handle.signal(resumeSignal);
}

async function completedAndRedriven(): Promise<void> {
  const invalid = JSON.stringify({ Bucket: resources.config.bucket, Key: 'nobody.png', Faces: [] });
  const { manifest } = await writeRecords(resources, photos(12), [invalid]);
  const handle = await start(newWorkflowId('completed'), manifest, {
    batchSize: 5,
    batchesInFlight: 2,
    imagesInFlightPerBatch: 4,
  });
  await handle.result();
  await record('run-completed', handle.workflowId);
  await record('batch-completed', `${handle.workflowId}/batch-0`);

  // The missing images arrive; the operator redrives their faces from the review DLQ.
  for (const { Bucket, Key } of await readRecordsFile(manifest)) {
    const missing = /\/missing-(\d+)\.png$/.exec(Key);
    if (missing)
      await resources.aws.s3.send(
        new PutObjectCommand({ Bucket, Key, Body: syntheticPng(photoOf(Number(missing[1])).faces) }),
      );
  }
  const redriveId = `${handle.workflowId}-redrive`;
  const redriven = await runCli(
    [
      'dlq',
      'redrive',
      '--run',
      handle.workflowId,
      '--reason',
      'IMAGE_NOT_FOUND',
      '--id',
      redriveId,
      '--wait',
      '--json',
    ],
    worker.cliEnv,
  );
  const summary = JSON.parse(lastLine(redriven.stdout)) as RunSummary;
  if (redriven.code !== 0 || summary.status !== 'completed')
    throw new Error(`the redrive did not complete: ${redriven.stderr}${redriven.stdout}`);
  await record('run-redriven', redriveId);
}

async function readRecordsFile({ Bucket, Key }: ReindexCollectionInput['manifest']): Promise<ImageRecord[]> {
  const { Body } = await resources.aws.s3.send(new GetObjectCommand({ Bucket, Key }));
  return ((await Body?.transformToString()) ?? '').split('\n').map((line) => JSON.parse(line) as ImageRecord);
}

async function continuedAsNewWhilePaused(): Promise<void> {
  const { manifest } = await writeRecords(resources, photos(16));
  const handle = await start(newWorkflowId('continued-as-new'), manifest, {
    batchSize: 8,
    batchesInFlight: 1,
    imagesInFlightPerBatch: 1,
    batchesPerExecution: 1,
  });
  const first = handle.firstExecutionRunId;
  await pauseAndResume(handle, [`${handle.workflowId}/batch-0`]);
  let second = first;
  await eventually(async () => {
    second = (await handle.describe()).runId;
    return second !== first;
  }, WAIT_MS);
  await pauseAndResume(handle, [`${handle.workflowId}/batch-1`]);
  await handle.result();
  await record('run-continued-as-new-paused', handle.workflowId, first);
  await record('run-continued-as-new-carried', handle.workflowId, second);
}

async function pausedMidBatch(): Promise<void> {
  const { manifest } = await writeRecords(resources, photos(12));
  const handle = await start(newWorkflowId('paused'), manifest, {
    batchSize: 6,
    batchesInFlight: 2,
    imagesInFlightPerBatch: 1,
  });
  await pauseAndResume(handle, [`${handle.workflowId}/batch-0`, `${handle.workflowId}/batch-1`]);
  await handle.result();
  await record('run-paused-mid-batch', handle.workflowId);
  await record('batch-paused-and-resumed', `${handle.workflowId}/batch-0`);
}

async function duplicatesAndRequeuedResults(): Promise<void> {
  const { manifest } = await writeRecords(resources, [
    { faces: [{ person: 'ana', box: box(0.25, 0.2) }], userId: 'user-ana' },
    { faces: [{ person: 'ana-elsewhere', box: box(0.25, 0.2) }], userId: 'user-ana' },
    { faces: [{ person: 'bo', box: box(0.25, 0.2) }] },
  ]);
  const [holder, second, other] = await readRecordsFile(manifest);
  if (!holder?.Faces[0] || !second?.Faces[0] || !other) throw new Error('the records file lost a record');
  second.Faces[0].FaceId = holder.Faces[0].FaceId;
  await resources.aws.s3.send(
    new PutObjectCommand({ ...manifest, Body: [holder, second, other].map((line) => JSON.stringify(line)).join('\n') }),
  );
  const workflowId = newWorkflowId('duplicates');
  // As SQS leaves rows after five receives no drain finished.
  for (const row of [resultRow(workflowId, workflowId), resultRow(workflowId, workflowId)])
    await resources.aws.sqs.send(
      new SendMessageCommand({ QueueUrl: resources.resultsDlqUrl, ...(await signedRowMessage(resources, row)) }),
    );
  // One record a batch, one batch at a time: the first row is in the table before the second comes.
  const summary = await (await start(workflowId, manifest, { batchSize: 1, batchesInFlight: 1 })).result();
  if (summary.dlqByReason[ReasonCode.DuplicateFaceId] !== 1 || summary.resultsInDlq !== 2)
    throw new Error(`the run settled no duplicate or counted no stranded row: ${JSON.stringify(summary)}`);
  await record('run-duplicates-settled', workflowId);

  const requeued = await runCli(['dlq', 'requeue-results', '--run', workflowId, '--wait', '--json'], worker.cliEnv);
  const { drain, written } = JSON.parse(lastLine(requeued.stdout)) as { drain: string; written: number };
  if (requeued.code !== 0 || written !== 2) throw new Error(`the requeued rows were not written: ${requeued.stderr}`);
  await record('drain-requeued-results', drain);
}

async function cancelledMidBatch(): Promise<void> {
  const { manifest } = await writeRecords(resources, photos(15));
  const handle = await start(newWorkflowId('cancelled'), manifest, {
    batchSize: 5,
    batchesInFlight: 2,
    imagesInFlightPerBatch: 1,
  });
  await indexed(3);
  await handle.cancel();
  const ended = await handle.result().then(
    () => 'completed',
    () => 'cancelled',
  );
  if (ended !== 'cancelled') throw new Error('the run ended before its cancellation reached it');
  await record('run-cancelled-mid-batch', handle.workflowId);
  await record('batch-cancelled', `${handle.workflowId}/batch-0`);
}

async function main(): Promise<void> {
  resources = await createRunResources();
  worker = await startWorker(resources);
  client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  try {
    await completedAndRedriven();
    await duplicatesAndRequeuedResults();
    // Slow enough that a pause or a cancellation finds images still to start.
    await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 500, p99Ms: 600 } } });
    await continuedAsNewWhilePaused();
    await pausedMidBatch();
    await cancelledMidBatch();
  } finally {
    await rekognitionAdmin('settings', 'PUT', { latency: {} });
    await client.connection.close();
    await worker.stop();
    await resources.release();
  }
  console.log('histories: recorded; their workflow ids, for HISTORY_WORKFLOW_IDS in test/workflows/replay.test.ts:');
  for (const [file, workflowId] of Object.entries(recorded)) console.log(`  '${file}': '${workflowId}',`);
}

main().catch((error: unknown) => {
  console.error(`histories: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
