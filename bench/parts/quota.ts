/**
 * Quota use: the project migrating `images` images against a service that allows Q IndexFaces a
 * second with a long-tailed latency. Achieved rate / Q over the steady part (10% to 90% of the
 * images) and the share of calls throttled, from the service's own counters. The run ends once
 * every image is indexed; the drain into DynamoDB is headroom's to measure.
 */
import type { Client } from '@temporalio/client';
import type { RunResources } from '../../harness/runs';
import { migrate, writeImages } from '../lib/migration';
import { median, steadyRate, throttledShare, wholeRate } from '../lib/rates';
import { type Latency, setTraffic } from '../lib/stack';

/** A realistic IndexFaces latency: median 150 ms with a long tail. */
export const INDEX_FACES_LATENCY: Latency = { medianMs: 150, p99Ms: 1_000 };

export interface QuotaRun {
  quota: number;
  images: number;
  steadyRate: number;
  steadyUse: number;
  wholeRunRate: number;
  throttledShare: number;
  indexFacesCalls: number;
  throttled: number;
  wallSeconds: number;
}

export async function measureProjectAtQuota(
  resources: RunResources,
  client: Client,
  { manifest, images }: { manifest: { Bucket: string; Key: string }; images: number },
  quota: number,
  latency: Latency = INDEX_FACES_LATENCY,
): Promise<QuotaRun> {
  await setTraffic({ quota, latency });
  const migration = await migrate({ resources, client, manifest, tps: quota, untilIndexed: images });
  const last = migration.samples.at(-1);
  const rate = steadyRate(migration.samples);
  return {
    quota,
    images,
    steadyRate: rate,
    steadyUse: rate / quota,
    wholeRunRate: wholeRate(migration.samples),
    throttledShare: throttledShare(migration.samples),
    indexFacesCalls: last?.calls ?? 0,
    throttled: last?.throttled ?? 0,
    wallSeconds: migration.wallSeconds,
  };
}

export async function quotaUse(
  resources: RunResources,
  client: Client,
  { images, quotas, runs }: { images: number; quotas: number[]; runs: number },
  log: (line: string) => void,
) {
  const manifest = await writeImages(resources, images);
  const byQuota = [];
  for (const quota of quotas) {
    const measured: QuotaRun[] = [];
    for (let run = 0; run < runs; run += 1) {
      const result = await measureProjectAtQuota(resources, client, { manifest, images }, quota);
      log(`quota ${quota}, run ${run + 1}: ${JSON.stringify(result)}`);
      measured.push(result);
    }
    byQuota.push({
      quota,
      medianSteadyUse: median(measured.map((run) => run.steadyUse)),
      medianThrottledShare: median(measured.map((run) => run.throttledShare)),
      medianWallSeconds: median(measured.map((run) => run.wallSeconds)),
      runs: measured,
    });
  }
  return { images, latency: INDEX_FACES_LATENCY, byQuota };
}
