/**
 * Failures that end, on the dev server with a worker, as an operator meets them: a fault that
 * fails every image pauses the run and says why, and a pause holds even while the rate-limited
 * queue holds a backlog of IndexFaces tasks.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { temporal } from '@temporalio/proto';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';
import { type RunProgress, type RunSummary, SEARCH_ATTRIBUTES, taskQueues } from '../../src/shared';
import { runStatus } from '../../src/cli/runs';
import { runCli } from '../../harness/cli';
import { type RunningWorker, startWorker } from '../../harness/worker';
import {
  createRunResources,
  eventually,
  facesIn,
  indexFacesCalls,
  rekognitionAdmin,
  resultRows,
  type RunResources,
  takeReview,
  writeRecords,
} from '../../harness/runs';

let resources: RunResources;
let worker: RunningWorker;
let client: Client;

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
}, 120_000);

afterAll(async () => {
  // Back to the rate the workers ask for, so later runs on this server are not held to the test's.
  await client?.workflowService.updateTaskQueueConfig({
    namespace: 'default',
    identity: 'test',
    taskQueue: taskQueues(worker.taskQueue).indexFaces,
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    updateQueueRateLimit: {},
  });
  await client?.connection.close();
  await worker?.stop();
  await resources?.release();
});

afterEach(async () => {
  await rekognitionAdmin('settings', 'PUT', { quotas: {}, latency: {}, faultRate: 0 });
});

const cli = (...args: string[]) => runCli(args, worker.cliEnv);
const face = (person: string): DeclaredFace => ({ person, box: [0.2, 0.2, 0.4, 0.4] });
/** What `reindex status --json` prints; waits poll `runStatus` instead, in this process, not a command each poll. */
const statusOf = async (id: string) =>
  JSON.parse((await cli('status', id, '--json')).stdout) as { status: string; progress?: RunProgress };

async function recordsOf(manifest: { Bucket: string; Key: string }): Promise<ImageRecord[]> {
  const { Body } = await resources.aws.s3.send(new GetObjectCommand(manifest));
  return ((await Body?.transformToString()) ?? '').split('\n').map((line) => JSON.parse(line) as ImageRecord);
}

test('a fault that fails every image pauses the run with its reason and first error; fixed and resumed, every image migrates', async () => {
  const spec = Array.from({ length: 12 }, (_, i) => ({ faces: [face(`person-${i}`)], missing: true }));
  const { manifest } = await writeRecords(resources, spec);
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;

  const started = await cli(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--id',
    id,
    '--batch-size',
    '6',
    '--batches-in-flight',
    '2',
    '--images-in-flight',
    '2',
    '--pause-after-failures',
    '3',
  );
  expect(started.code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).progress?.pausedBy !== undefined, 60_000);

  const { progress } = await statusOf(id);
  expect(progress).toMatchObject({ paused: true, pausedBy: { reason: ReasonCode.ImageNotFound, images: 3 } });
  expect(progress?.pausedBy?.firstError).toMatch(/^IndexFaces refused image [0-9a-f]{12}: /);
  const text = (await cli('status', id)).stdout;
  expect(text).toMatch(
    /paused itself: 3 images in a row of batch \d failed with IMAGE_NOT_FOUND; the first: IndexFaces refused image [0-9a-f]{12}: .*Fix the cause, then `reindex resume`/,
  );
  const described = await client.workflow.getHandle(id).describe();
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.paused)).toBe(true);
  // Not encrypted: the UI finds the run by its target's name.
  expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.collection)).toBe(target);
  expect(await takeReview(resources)).toEqual([]);

  // The operator fixes the cause: the images go where the records say.
  for (const [i, record] of (await recordsOf(manifest)).entries()) {
    await resources.aws.s3.send(
      new PutObjectCommand({ Bucket: record.Bucket, Key: record.Key, Body: syntheticPng(spec[i]?.faces ?? []) }),
    );
  }
  expect((await cli('resume', id)).code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).status !== 'RUNNING', 60_000);

  const summary = (await client.workflow.getHandle(id).result()) as RunSummary;
  expect(summary).toMatchObject({ status: 'completed', images: 12, matched: 12, dlq: 0 });
  expect(await facesIn(resources, target)).toEqual((await resultRows(resources, id)).map((row) => row.FaceId).sort());
  expect(await takeReview(resources)).toEqual([]);
}, 120_000);

test('after pause no IndexFaces call starts past five seconds, though the rate-limited queue held a backlog; resumed, every image migrates', async () => {
  const { manifest } = await writeRecords(
    resources,
    Array.from({ length: 40 }, (_, i) => ({ faces: [face(`person-${i % 5}`)] })),
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;

  const started = await cli(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--id',
    id,
    '--tps',
    '2',
    '--batch-size',
    '20',
    '--batches-in-flight',
    '2',
    '--images-in-flight',
    '20',
  );
  expect(started.code).toBe(0);
  const callsBefore = await indexFacesCalls();
  await eventually(async () => (await indexFacesCalls()) - callsBefore >= 3, 60_000);
  expect((await cli('pause', id)).code).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  const callsAfterFiveSeconds = await indexFacesCalls();
  await new Promise((resolve) => setTimeout(resolve, 10_000));

  expect(await indexFacesCalls()).toBe(callsAfterFiveSeconds);
  expect(callsAfterFiveSeconds - callsBefore).toBeLessThan(40);
  expect((await cli('resume', id)).code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).status !== 'RUNNING', 120_000);
  const summary = (await client.workflow.getHandle(id).result()) as RunSummary;
  expect(summary).toMatchObject({ status: 'completed', images: 40, matched: 40, dlq: 0, notProcessed: 0 });
  expect(await facesIn(resources, target)).toEqual((await resultRows(resources, id)).map((row) => row.FaceId).sort());
  // The rate outlives the run: the next tests run at the workers' own.
  expect((await cli('rate', '--reset')).code).toBe(0);
}, 240_000);

test('cancel ends a run whose every image is throttled, within seconds, with nothing lost and nothing left in the target', async () => {
  await rekognitionAdmin('settings', 'PUT', { quotas: { IndexFaces: { tps: 0.0001, burst: 0.0001 } } });
  const { manifest } = await writeRecords(
    resources,
    Array.from({ length: 3 }, (_, i) => ({ faces: [face(`person-${i}`)] })),
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  expect(
    (await cli('start', '--manifest', `s3://${manifest.Bucket}/${manifest.Key}`, '--target', target, '--id', id)).code,
  ).toBe(0);
  const callsBefore = await indexFacesCalls();
  await eventually(async () => (await indexFacesCalls()) - callsBefore >= 6, 60_000);

  const cancelledAt = Date.now();
  expect((await cli('cancel', id)).code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).status !== 'RUNNING', 30_000);

  expect(Date.now() - cancelledAt).toBeLessThan(30_000);
  expect((await statusOf(id)).status).toBe('CANCELLED');
  const { Body } = await resources.aws.s3.send(
    new GetObjectCommand({ Bucket: resources.config.bucket, Key: `runs/${id}/report/summary.json` }),
  );
  const summary = JSON.parse((await Body?.transformToString()) ?? '') as RunSummary;
  expect(summary).toMatchObject({ status: 'cancelled', images: 0, notProcessed: 3, dlq: 0 });
  expect(await facesIn(resources, target)).toEqual([]);
}, 120_000);

test('cancel during the split stops the split within seconds; the records split so far count as not processed', async () => {
  const records = Array.from({ length: 40_000 }, (_, n) =>
    JSON.stringify({
      Bucket: resources.config.bucket,
      Key: `never/${n}.png`,
      Faces: [
        {
          FaceId: `${String(n).padStart(8, '0')}-aaaa-bbbb-cccc-dddddddddddd`,
          BoundingBoxes: { Width: 0.2, Height: 0.2, Left: 0.1, Top: 0.1 },
        },
      ],
    }),
  );
  const manifest = { Bucket: resources.config.bucket, Key: `tests/${randomUUID()}/records.jsonl` };
  await resources.aws.s3.send(new PutObjectCommand({ ...manifest, Body: records.join('\n') }));
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  expect(
    (
      await cli(
        'start',
        '--manifest',
        `s3://${manifest.Bucket}/${manifest.Key}`,
        '--target',
        target,
        '--id',
        id,
        '--batch-size',
        '50',
      )
    ).code,
  ).toBe(0);
  await eventually(async () => (await runStatus(client, id)).progress?.phase === 'splitting', 30_000);
  await new Promise((resolve) => setTimeout(resolve, 1_000));

  const cancelledAt = Date.now();
  expect((await cli('cancel', id)).code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).status !== 'RUNNING', 30_000);

  // The whole end of the run (drain, users, reconcile, report, tagging its chunks), on a machine
  // running three suites at once; the split stopping early is what notProcessed below proves.
  expect(Date.now() - cancelledAt).toBeLessThan(30_000);
  const { Body } = await resources.aws.s3.send(
    new GetObjectCommand({ Bucket: resources.config.bucket, Key: `runs/${id}/report/summary.json` }),
  );
  const summary = JSON.parse((await Body?.transformToString()) ?? '') as RunSummary;
  expect(summary).toMatchObject({ status: 'cancelled', images: 0, dlq: 0 });
  expect(summary.notProcessed).toBeGreaterThan(0);
  expect(summary.notProcessed).toBeLessThan(40_000);
}, 120_000);

test('rows are drained into the table while the run is paused, not left in the queue until it resumes', async () => {
  await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 150, p99Ms: 200 } } });
  const { manifest } = await writeRecords(
    resources,
    Array.from({ length: 400 }, (_, i) => ({ faces: [face(`person-${i % 5}`)] })),
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  const callsBefore = await indexFacesCalls();
  expect(
    (
      await cli(
        'start',
        '--manifest',
        `s3://${manifest.Bucket}/${manifest.Key}`,
        '--target',
        target,
        '--id',
        id,
        '--batch-size',
        '400',
        '--batches-in-flight',
        '1',
        '--images-in-flight',
        '4',
      )
    ).code,
  ).toBe(0);
  // A batch publishes its rows a hundred at a time: once the first hundred are out, the run pauses.
  await eventually(async () => (await indexFacesCalls()) - callsBefore >= 110, 90_000);
  expect((await cli('pause', id)).code).toBe(0);

  await eventually(async () => (await resultRows(resources, id)).length >= 100, 90_000);
  expect((await statusOf(id)).progress).toMatchObject({ paused: true, phase: 'indexing' });

  expect((await cli('resume', id)).code).toBe(0);
  await eventually(async () => (await runStatus(client, id)).status !== 'RUNNING', 90_000);
  const summary = (await client.workflow.getHandle(id).result()) as RunSummary;
  expect(summary).toMatchObject({ status: 'completed', images: 400, matched: 400, resultsWritten: 400 });
  expect(summary.resultsMaxWaitMs).toBeLessThan(5 * 60_000);
}, 240_000);
