/**
 * Fairness: one large collection and many small ones started together in one plan, on one
 * IndexFaces quota. The images of each collection take turns at the rate by their target's
 * fairness key, so a small collection completes within minutes of the start instead of after the
 * large one; and the quota stays in use throughout, from the first call to the last.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import {
  type PlannedRun,
  type PlanRunSettings,
  planProgressQuery,
  type PlanSummary,
  progressQuery,
  type RunPhase,
  taskQueues,
} from '../../src/shared';
import type { reindexPlan } from '../../src/workflows';
import { type RunResources, runInput } from '../../harness/runs';
import { startRealWorker } from '../../harness/real-worker';
import { stopWorkers, workerEnv, writeImages } from '../lib/migration';
import { median, steadyRate, successesPerInterval, throttledShare, wholeRate } from '../lib/rates';
import { sampleIndexFaces, setTraffic } from '../lib/stack';
import { INDEX_FACES_LATENCY } from './quota';

export interface FairnessSettings {
  largeImages: number;
  smallImages: number;
  smallCollections: number;
  quota: number;
  runs: number;
}

export interface FairnessRun {
  wallSeconds: number;
  /** Seconds from the plan's start to each small collection's run completing. */
  smallCompletedSeconds: number[];
  /**
   * Seconds from the plan's start to each small collection's run leaving its indexing phase: what
   * follows (drain, users, reconcile, report) is the rest of its completion time.
   */
  smallIndexedSeconds: number[];
  largeCompletedSeconds: number;
  /** IndexFaces successes a second from the first to the last, over the quota. */
  quotaUse: number;
  steadyQuotaUse: number;
  throttledShare: number;
  /** IndexFaces successes in each 30 s from the first sample: at Q = 10, 300 is the quota. */
  successesEach30Seconds: number[];
  indexFacesCalls: number;
  /** Times the large run held back new images for its drain, and the longest a row waited to be drained. */
  largeResultsHolds: number;
  largeResultsMaxWaitMs: number | undefined;
  /** Times the worker exited because the SDK dropped a run's workflow task, and was started again. */
  workerRestarts: number;
}

const BEFORE_INDEXED = new Set<RunPhase>(['preparing', 'splitting', 'indexing']);

/**
 * Node flags of a worker that runs a plan, as docs/scaling.md advises: a heap whose workflow cache
 * (182 workflows) holds the plan, its eleven runs and their batches in flight (56 here), so that
 * the SDK does not evict and replay them while they run.
 */
const PLAN_WORKER_NODE_FLAGS = ['--max-old-space-size=512'];

async function measureOnce(
  resources: RunResources,
  client: Client,
  files: { large: PlannedRun['manifest']; small: PlannedRun['manifest'] },
  settings: FairnessSettings,
): Promise<FairnessRun> {
  const planId = `bench-fairness-${randomUUID().slice(0, 8)}`;
  const taskQueue = `bench-${planId}`;
  const worker = await startRealWorker(workerEnv(resources, taskQueue, settings.quota), PLAN_WORKER_NODE_FLAGS);
  try {
    await setTraffic({ quota: settings.quota, latency: INDEX_FACES_LATENCY });
    const large = resources.ownCollection(`${planId}-large`);
    const small = Array.from({ length: settings.smallCollections }, (_, i) =>
      resources.ownCollection(`${planId}-small-${i}`),
    );
    const collections: PlannedRun[] = [
      { targetCollectionId: large, manifest: files.large, sourceCollectionId: undefined, images: settings.largeImages },
      ...small.map((targetCollectionId) => ({
        targetCollectionId,
        manifest: files.small,
        sourceCollectionId: undefined,
        images: settings.smallImages,
      })),
    ];
    const {
      manifest: _manifest,
      targetCollectionId: _target,
      sourceCollectionId: _source,
      ...runSettings
    } = runInput(files.large, large);
    const planSettings: PlanRunSettings = runSettings;
    const sampler = await sampleIndexFaces();
    const startedAt = Date.now();
    const handle = await client.workflow.start<typeof reindexPlan>('reindexPlan', {
      taskQueue: taskQueues(taskQueue).control,
      workflowId: planId,
      // Every collection at once: the queue's fairness alone decides who goes first.
      args: [{ collections, settings: planSettings, collectionsInFlight: collections.length }],
    });
    const completedAt = new Map<string, number>();
    const indexedAt = new Map<string, number>();
    const ended = handle.result();
    let done = false;
    void ended.finally(() => (done = true)).catch(() => undefined);
    while (!done) {
      const progress = await handle.query(planProgressQuery).catch(() => undefined);
      for (const state of progress?.collections ?? []) {
        if (state.state === 'completed' && !completedAt.has(state.targetCollectionId))
          completedAt.set(state.targetCollectionId, (Date.now() - startedAt) / 1000);
      }
      const indexing = (progress?.collections ?? []).filter(
        ({ targetCollectionId, state }) =>
          state === 'running' && small.includes(targetCollectionId) && !indexedAt.has(targetCollectionId),
      );
      await Promise.all(
        indexing.map(async ({ targetCollectionId, workflowId }) => {
          const run = await client.workflow
            .getHandle(workflowId)
            .query(progressQuery)
            .catch(() => undefined);
          if (run !== undefined && !BEFORE_INDEXED.has(run.phase))
            indexedAt.set(targetCollectionId, (Date.now() - startedAt) / 1000);
        }),
      );
      await sleep(1_000);
    }
    const summary: PlanSummary = await ended;
    const wallSeconds = (Date.now() - startedAt) / 1000;
    const samples = await sampler.stop();
    const notCompleted = summary.collections.filter(({ state }) => state !== 'completed');
    if (notCompleted.length > 0)
      throw new Error(
        `fairness: ${notCompleted.length} collections did not complete: ${notCompleted.map(({ targetCollectionId, error }) => `${targetCollectionId} ${error ?? ''}`).join('; ')}`,
      );
    const seconds = (target: string) => completedAt.get(target) ?? wallSeconds;
    const last = samples.at(-1);
    const largeSummary = summary.collections.find(({ targetCollectionId }) => targetCollectionId === large)?.summary;
    return {
      wallSeconds,
      smallCompletedSeconds: small.map(seconds),
      smallIndexedSeconds: small.map((target) => indexedAt.get(target) ?? seconds(target)),
      largeCompletedSeconds: seconds(large),
      quotaUse: wholeRate(samples) / settings.quota,
      steadyQuotaUse: steadyRate(samples) / settings.quota,
      throttledShare: throttledShare(samples),
      successesEach30Seconds: successesPerInterval(samples, 30_000),
      indexFacesCalls: last?.calls ?? 0,
      largeResultsHolds: largeSummary?.resultsHolds ?? 0,
      largeResultsMaxWaitMs: largeSummary?.resultsMaxWaitMs,
      // The SDK may drop a run and its worker exit: started again, it replays the run after the task times out.
      workerRestarts: worker.restarts(),
    };
  } finally {
    await stopWorkers([worker], planId);
  }
}

export async function fairness(
  resources: RunResources,
  client: Client,
  settings: FairnessSettings,
  log: (line: string) => void,
) {
  const files = {
    large: await writeImages(resources, settings.largeImages),
    small: await writeImages(resources, settings.smallImages),
  };
  const runs: FairnessRun[] = [];
  for (let run = 0; run < settings.runs; run += 1) {
    const measured = await measureOnce(resources, client, files, settings);
    log(`fairness, run ${run + 1}: ${JSON.stringify(measured)}`);
    runs.push(measured);
  }
  return {
    latency: INDEX_FACES_LATENCY,
    medianSlowestSmallSeconds: median(runs.map((run) => Math.max(...run.smallCompletedSeconds))),
    medianSlowestSmallIndexedSeconds: median(runs.map((run) => Math.max(...run.smallIndexedSeconds))),
    medianQuotaUse: median(runs.map((run) => run.quotaUse)),
    runs,
  };
}
