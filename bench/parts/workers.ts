/**
 * Many workers: two worker processes on one task queue, each set to the quota Q. The server holds
 * the queue to Q, so together they stay at Q; the batches' histories say which worker ran each
 * IndexFaces activity.
 */
import type { Client } from '@temporalio/client';
import type { RunResources } from '../../harness/runs';
import { migrate, writeImages } from '../lib/migration';
import { median, steadyRate, throttledShare } from '../lib/rates';
import { setTraffic } from '../lib/stack';
import { INDEX_FACES_LATENCY } from './quota';

/** IndexFaces activities started, by the identity (`<pid>@<host>`) of the worker that ran them. */
async function indexingsByWorker(client: Client, workflowId: string, batches: number): Promise<Record<string, number>> {
  const byWorker: Record<string, number> = {};
  for (let batch = 0; batch < batches; batch += 1) {
    const events = (await client.workflow.getHandle(`${workflowId}/batch-${batch}`).fetchHistory()).events ?? [];
    const indexing = new Set(
      events
        .filter((event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'reindexImage')
        .map((event) => event.eventId?.toString()),
    );
    for (const event of events) {
      const started = event.activityTaskStartedEventAttributes;
      if (started && indexing.has(started.scheduledEventId?.toString())) {
        const identity = started.identity ?? 'unknown';
        byWorker[identity] = (byWorker[identity] ?? 0) + 1;
      }
    }
  }
  return byWorker;
}

async function measureTwoWorkers(
  resources: RunResources,
  client: Client,
  manifest: { Bucket: string; Key: string },
  { images, quota }: { images: number; quota: number },
) {
  const batchSize = 500;
  const migration = await migrate({
    resources,
    client,
    manifest,
    tps: quota,
    workers: 2,
    input: { batchSize },
    untilIndexed: images,
  });
  const byIdentity = await indexingsByWorker(client, migration.workflowId, Math.ceil(images / batchSize));
  const total = Object.values(byIdentity).reduce((sum, count) => sum + count, 0);
  const rate = steadyRate(migration.samples);
  return {
    steadyRate: rate,
    steadyUse: rate / quota,
    throttledShare: throttledShare(migration.samples),
    shares: migration.workerPids.map((pid) => {
      const count = Object.entries(byIdentity).find(([identity]) => identity.startsWith(`${pid}@`))?.[1] ?? 0;
      return { pid, indexings: count, share: total > 0 ? count / total : 0 };
    }),
    indexingsStarted: total,
    cpuSeconds: migration.cpuSeconds,
  };
}

export async function manyWorkers(
  resources: RunResources,
  client: Client,
  { images, quota, runs }: { images: number; quota: number; runs: number },
  log: (line: string) => void,
) {
  const manifest = await writeImages(resources, images);
  await setTraffic({ quota, latency: INDEX_FACES_LATENCY });
  const measured = [];
  for (let run = 0; run < runs; run += 1) {
    const result = await measureTwoWorkers(resources, client, manifest, { images, quota });
    log(`workers, run ${run + 1}: ${JSON.stringify(result)}`);
    measured.push(result);
  }
  return {
    quota,
    images,
    medianSteadyUse: median(measured.map((run) => run.steadyUse)),
    medianThrottledShare: median(measured.map((run) => run.throttledShare)),
    // The larger share of each run: 0.5 is an even split.
    medianLargerShare: median(measured.map((run) => Math.max(...run.shares.map((worker) => worker.share)))),
    runs: measured,
  };
}
