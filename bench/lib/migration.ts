/**
 * One migration through the whole stack, measured: worker processes started for it on a task
 * queue of its own, the run started and awaited, the service's IndexFaces counters sampled, and
 * every process's CPU time over the run.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PurgeQueueCommand, PurgeQueueInProgress } from '@aws-sdk/client-sqs';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { LOCAL_DIR } from '../../infra/local/settings';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import {
  progressQuery,
  type ReindexCollectionInput,
  type RunProgress,
  type RunSummary,
  taskQueues,
} from '../../src/shared';
import type { reindexCollection } from '../../src/workflows';
import { type PhotoSpec, type RunResources, runInput, writeRecords } from '../../harness/runs';
import { cpuMeter, peakRssMiB } from './processes';
import { sampleIndexFaces, type Sample, stackPids } from './stack';
import { type RealWorker, startRealWorker } from '../../harness/real-worker';

export const LOG_DIR = path.join(LOCAL_DIR, 'bench-logs');

/** Images of one face each, from ten photos of ten people: many records, ten uploads. */
export async function writeImages(
  resources: RunResources,
  images: number,
): Promise<ReindexCollectionInput['manifest']> {
  const face = (i: number): DeclaredFace => ({ person: `p${i % 10}`, box: [0.3, 0.2, 0.35, 0.35] });
  const photos: PhotoSpec[] = Array.from({ length: images }, (_, i) => ({ faces: [face(i)] }));
  return (await writeRecords(resources, photos)).manifest;
}

/** The worker's configuration, as the variables src/domain/config.ts reads. */
export function workerEnv(resources: RunResources, taskQueue: string, tps: number): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REINDEX_BUCKET: resources.config.bucket,
    REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
    REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
    REINDEX_RESULTS_TABLE: resources.config.resultsTable,
    REINDEX_TASK_QUEUE: taskQueue,
    REINDEX_TPS: String(tps),
  };
}

export interface MigrationOptions {
  resources: RunResources;
  client: Client;
  manifest: ReindexCollectionInput['manifest'];
  /** REINDEX_TPS: the task queue's IndexFaces rate across every worker. */
  tps: number;
  workers?: number;
  input?: Partial<ReindexCollectionInput>;
  /** Node flags for the workers, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /**
   * Ends the run once the service has indexed this many images: for measuring IndexFaces alone,
   * without waiting for the drain into moto, which takes longer than the indexing here.
   */
  untilIndexed?: number;
  /**
   * Ends the run after this long if it has not ended by itself, keeping its progress then: for a
   * run this stack cannot finish in the time there is.
   */
  stopAfterMs?: number;
}

export interface Migration {
  workflowId: string;
  /** Absent when the run was ended once indexed (`untilIndexed`). */
  summary: RunSummary | undefined;
  /** The run's progress when `stopAfterMs` ended it; absent when it ended by itself. */
  progress: RunProgress | undefined;
  samples: Sample[];
  wallSeconds: number;
  /** CPU seconds over the run: the stack's processes and `worker-<n>` for each worker. */
  cpuSeconds: Record<string, number>;
  workerPeakRssMiB: number[];
  workerPids: number[];
}

async function indexed(sampled: () => Sample | undefined, images: number): Promise<void> {
  while ((sampled()?.succeeded ?? 0) < images) await sleep(250);
}

/** The run's summary if it ends within `ms`; else its progress at that moment, and the run ended. */
async function resultWithin(
  handle: WorkflowHandle<typeof reindexCollection>,
  ms: number,
): Promise<{ summary?: RunSummary; progress?: RunProgress }> {
  const result = handle.result();
  const timer = new AbortController();
  const ended = await Promise.race([result.then(() => true), sleep(ms, false, { signal: timer.signal })]);
  timer.abort();
  if (ended) return { summary: await result };
  const progress = await handle.query(progressQuery);
  await handle.terminate('bench: out of time');
  await result.catch(() => undefined);
  return { progress };
}

/** SQS purges a queue at most once a minute and refuses a second purge within it (PurgeQueueInProgress). */
const PURGE_INTERVAL_MS = 60_000;
const lastPurgeAt = new Map<string, number>();

/** Purges a queue, waiting out the minute since its last purge, this process's or another's. */
async function purge({ aws }: RunResources, QueueUrl: string): Promise<void> {
  const waitMs = (lastPurgeAt.get(QueueUrl) ?? -Infinity) + PURGE_INTERVAL_MS - Date.now();
  if (waitMs > 0) await sleep(waitMs);
  try {
    await aws.sqs.send(new PurgeQueueCommand({ QueueUrl }));
  } catch (error) {
    if (!(error instanceof PurgeQueueInProgress)) throw error;
    await sleep(PURGE_INTERVAL_MS);
    await aws.sqs.send(new PurgeQueueCommand({ QueueUrl }));
  }
  lastPurgeAt.set(QueueUrl, Date.now());
}

/** Results and DLQ messages of a run ended early must not reach the next run's drain. */
async function emptyQueues(resources: RunResources): Promise<void> {
  const { config } = resources;
  await Promise.all([config.resultsQueueUrl, config.reviewDlqUrl].map((queueUrl) => purge(resources, queueUrl)));
}

export async function migrate({
  resources,
  client,
  manifest,
  tps,
  workers = 1,
  input,
  nodeArgs,
  untilIndexed,
  stopAfterMs,
}: MigrationOptions): Promise<Migration> {
  const workflowId = `bench-${randomUUID().slice(0, 8)}`;
  const taskQueue = `bench-${workflowId}`;
  const started: RealWorker[] = [];
  try {
    for (let n = 0; n < workers; n += 1)
      started.push(await startRealWorker(workerEnv(resources, taskQueue, tps), nodeArgs));
    const target = resources.ownCollection(`${workflowId}-target`);
    const meter = cpuMeter({
      ...stackPids(),
      ...Object.fromEntries(started.map((worker, n) => [`worker-${n}`, worker.pid])),
    });
    const sampler = await sampleIndexFaces();
    const startedAt = Date.now();
    const handle = await client.workflow.start<typeof reindexCollection>('reindexCollection', {
      taskQueue: taskQueues(taskQueue).control,
      workflowId,
      args: [runInput(manifest, target, input)],
    });
    let summary: RunSummary | undefined;
    let progress: RunProgress | undefined;
    if (stopAfterMs !== undefined) {
      ({ summary, progress } = await resultWithin(handle, stopAfterMs));
      if (progress) await emptyQueues(resources);
    } else if (untilIndexed === undefined) {
      summary = await handle.result();
    } else {
      await indexed(() => sampler.latest(), untilIndexed);
      // The last activities' completions reach the histories a moment after the service answered.
      await sleep(2_000);
      await handle.terminate('bench: the measurement needs IndexFaces only');
      await emptyQueues(resources);
    }
    const wallSeconds = (Date.now() - startedAt) / 1000;
    const samples = await sampler.stop();
    return {
      workflowId,
      summary,
      progress,
      samples,
      wallSeconds,
      cpuSeconds: meter.stop(),
      workerPeakRssMiB: started.map((worker) => peakRssMiB(worker.pid)),
      workerPids: started.map((worker) => worker.pid),
    };
  } finally {
    await stopWorkers(started, workflowId);
  }
}

/** Stops the workers and keeps what each wrote in LOG_DIR, for a run that went wrong. */
export async function stopWorkers(workers: RealWorker[], name: string): Promise<void> {
  await Promise.all(workers.map((worker) => worker.stop()));
  mkdirSync(LOG_DIR, { recursive: true });
  workers.forEach((worker, n) =>
    writeFileSync(path.join(LOG_DIR, `${name}-worker-${n}.log`), `${worker.stdout()}${worker.stderr()}`),
  );
}
