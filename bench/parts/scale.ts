/**
 * Scale: a run splits a records file of `records` records (and one of a tenth of that, to show the
 * worker's memory does not grow with the file): records a second and the worker's peak memory.
 * Then a run of many small batches shows the parent's history length per continue-as-new link.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { progressQuery, taskQueues } from '../../src/shared';
import type { reindexCollection } from '../../src/workflows';
import { type RunResources, runInput } from '../../harness/runs';
import { migrate, stopWorkers, workerEnv, writeImages } from '../lib/migration';
import { peakRssMiB, rssMiB } from '../lib/processes';
import { setTraffic } from '../lib/stack';
import { startRealWorker } from '../../harness/real-worker';

const EventType = temporal.api.enums.v1.EventType;
const NO_RATE_LIMIT = 100_000;

function* recordLines(bucket: string, key: string, records: number): Generator<string> {
  for (let i = 0; i < records; i += 1) {
    const face = {
      FaceId: randomUUID(),
      ImageId: randomUUID(),
      BoundingBoxes: { Left: 0.3, Top: 0.2, Width: 0.35, Height: 0.35 },
    };
    yield `${JSON.stringify({ Bucket: bucket, Key: key, ExternalImageId: `photo-${i}`, Faces: [face] })}\n`;
  }
}

/** Streams a records file of `records` one-face records, all naming one photo, into the bucket. */
async function writeLargeRecords(resources: RunResources, records: number): Promise<{ Bucket: string; Key: string }> {
  const { bucket } = resources.config;
  const prefix = `bench/scale-${randomUUID().slice(0, 8)}`;
  const photo = `${prefix}/photo.png`;
  await resources.aws.s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: photo,
      Body: syntheticPng([{ person: 'p', box: [0.3, 0.2, 0.35, 0.35] }]),
    }),
  );
  const manifest = { Bucket: bucket, Key: `${prefix}/records.jsonl` };
  await new Upload({
    client: resources.aws.s3,
    params: { ...manifest, Body: Readable.from(recordLines(bucket, photo, records)) },
  }).done();
  return manifest;
}

/** When the run's splitManifest activity started and completed, from its history. */
async function splitSeconds(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find(
    (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'splitManifest',
  );
  const started = events.find(
    (event) =>
      event.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === scheduled?.eventId?.toString(),
  );
  const completed = events.find(
    (event) =>
      event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
      event.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === scheduled?.eventId?.toString(),
  );
  const seconds = (event: typeof started) =>
    Number(event?.eventTime?.seconds ?? 0) + (event?.eventTime?.nanos ?? 0) / 1e9;
  if (!started || !completed) throw new Error('the run has no completed splitManifest');
  return seconds(completed) - seconds(started);
}

async function measureSplit(resources: RunResources, client: Client, records: number, log: (line: string) => void) {
  const uploadStarted = Date.now();
  const manifest = await writeLargeRecords(resources, records);
  log(`scale: ${records} records written in ${Math.round((Date.now() - uploadStarted) / 1000)} s`);
  const workflowId = `bench-split-${randomUUID().slice(0, 8)}`;
  const worker = await startRealWorker(workerEnv(resources, `bench-${workflowId}`, NO_RATE_LIMIT));
  try {
    const idleRss = rssMiB(worker.pid);
    const handle = await client.workflow.start<typeof reindexCollection>('reindexCollection', {
      taskQueue: taskQueues(`bench-${workflowId}`).control,
      workflowId,
      args: [runInput(manifest, resources.ownCollection(`${workflowId}-target`))],
    });
    for (;;) {
      const { phase } = await handle.query(progressQuery);
      if (phase !== 'preparing' && phase !== 'splitting') break;
      await sleep(1_000);
    }
    const peak = peakRssMiB(worker.pid);
    await handle.terminate('bench: only the split is measured');
    const seconds = await splitSeconds(handle);
    return {
      records,
      splitSeconds: seconds,
      recordsPerSecond: records / seconds,
      workerIdleRssMiB: idleRss,
      workerPeakRssMiB: peak,
    };
  } finally {
    await stopWorkers([worker], workflowId);
  }
}

async function historyPerLink(
  resources: RunResources,
  client: Client,
  { images, batchSize }: { images: number; batchSize: number },
) {
  await setTraffic({ quota: undefined, latency: undefined });
  const manifest = await writeImages(resources, images);
  const migration = await migrate({ resources, client, manifest, tps: NO_RATE_LIMIT, input: { batchSize } });
  const links = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId = '${migration.workflowId}'` })) {
    links.push({
      runId: execution.runId,
      startTime: execution.startTime.toISOString(),
      historyLength: execution.historyLength,
    });
  }
  links.sort((a, b) => a.startTime.localeCompare(b.startTime));
  return {
    images,
    batchSize,
    batches: Math.ceil(images / batchSize),
    wallSeconds: migration.wallSeconds,
    links: links.map(({ historyLength }) => historyLength),
  };
}

export async function scale(
  resources: RunResources,
  client: Client,
  { records, historyImages, historyBatchSize }: { records: number; historyImages: number; historyBatchSize: number },
  log: (line: string) => void,
) {
  await setTraffic({ quota: undefined, latency: undefined });
  const splits = [];
  for (const size of [Math.round(records / 10), records]) {
    const split = await measureSplit(resources, client, size, log);
    log(`scale, split: ${JSON.stringify(split)}`);
    splits.push(split);
  }
  const history = await historyPerLink(resources, client, { images: historyImages, batchSize: historyBatchSize });
  log(`scale, history: ${JSON.stringify(history)}`);
  return { splits, history };
}
