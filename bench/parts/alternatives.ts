/**
 * The project against the alternatives, on the same service with the same quota and latency:
 *
 * - the original's design: as many concurrent callers as the quota (its Lambda concurrency), each
 *   one client (one Lambda container) with the SDK's retries, an image that still fails going back
 *   to the end of the work (SQS gives the message again); no rate limit;
 * - a plain sequential script: one caller, one image after the other;
 * - this project, through the whole stack.
 *
 * The original and the project run again with slow calls, where concurrency = Q falls short of Q.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { CreateCollectionCommand, IndexFacesCommand, RekognitionClient } from '@aws-sdk/client-rekognition';
import type { Client } from '@temporalio/client';
import type { RunResources } from '../../harness/runs';
import { writeImages } from '../lib/migration';
import { median, steadyRate, throttledShare } from '../lib/rates';
import { type Latency, sampleIndexFaces, setTraffic } from '../lib/stack';
import { INDEX_FACES_LATENCY, measureProjectAtQuota } from './quota';

/** boto3's default for the original's Lambdas: five attempts in all. */
const ORIGINAL_MAX_ATTEMPTS = 5;

/** Slow calls: large images, or a region under load. */
export const SLOW_INDEX_FACES_LATENCY: Latency = { medianMs: 1_500, p99Ms: 5_000 };

interface Image {
  Bucket: string;
  Name: string;
}

async function imagesOf(resources: RunResources, manifest: { Bucket: string; Key: string }): Promise<Image[]> {
  const body = await (await resources.aws.s3.send(new GetObjectCommand(manifest))).Body?.transformToString();
  return (body ?? '')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const record = JSON.parse(line) as { Bucket: string; Key: string };
      return { Bucket: record.Bucket, Name: record.Key };
    });
}

/**
 * `callers` loops take images from one list until every image is indexed, each with a client of its
 * own; the service's counters say what it saw.
 */
async function callDirectly(
  resources: RunResources,
  images: Image[],
  callers: number,
  quota: number,
  latency: Latency = INDEX_FACES_LATENCY,
) {
  await setTraffic({ quota, latency });
  const CollectionId = resources.ownCollection(`bench-direct-${randomUUID().slice(0, 8)}`);
  await resources.aws.rekognition.send(new CreateCollectionCommand({ CollectionId }));
  const work = [...images];
  let failedAfterRetries = 0;
  const sampler = await sampleIndexFaces();
  const startedAt = Date.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      const client = new RekognitionClient({ maxAttempts: ORIGINAL_MAX_ATTEMPTS });
      try {
        for (let image = work.shift(); image; image = work.shift()) {
          try {
            await client.send(
              new IndexFacesCommand({
                CollectionId,
                Image: { S3Object: image },
                ExternalImageId: 'bench',
                QualityFilter: 'NONE',
              }),
            );
          } catch {
            failedAfterRetries += 1;
            work.push(image);
          }
        }
      } finally {
        client.destroy();
      }
    }),
  );
  const wallSeconds = (Date.now() - startedAt) / 1000;
  const samples = await sampler.stop();
  const rate = steadyRate(samples);
  const last = samples.at(-1);
  return {
    images: images.length,
    steadyRate: rate,
    steadyUse: rate / quota,
    throttledShare: throttledShare(samples),
    indexFacesCalls: last?.calls ?? 0,
    throttled: last?.throttled ?? 0,
    failedAfterRetries,
    wallSeconds,
  };
}

export async function alternatives(
  resources: RunResources,
  client: Client,
  {
    images,
    quota,
    runs,
    sequentialImages,
    slowImages,
  }: { images: number; quota: number; runs: number; sequentialImages: number; slowImages: number },
  log: (line: string) => void,
) {
  const manifest = await writeImages(resources, images);
  const all = await imagesOf(resources, manifest);
  const slowManifest = await writeImages(resources, slowImages);
  const slow = await imagesOf(resources, slowManifest);
  const designs = {
    original: () => callDirectly(resources, all, quota, quota),
    sequential: () => callDirectly(resources, all.slice(0, sequentialImages), 1, quota),
    project: () => measureProjectAtQuota(resources, client, { manifest, images }, quota),
    originalSlowCalls: () => callDirectly(resources, slow, quota, quota, SLOW_INDEX_FACES_LATENCY),
    projectSlowCalls: () =>
      measureProjectAtQuota(
        resources,
        client,
        { manifest: slowManifest, images: slowImages },
        quota,
        SLOW_INDEX_FACES_LATENCY,
      ),
  };
  const measured: Record<string, { steadyUse: number; throttledShare: number }[]> = Object.fromEntries(
    Object.keys(designs).map((design) => [design, []]),
  );
  for (let run = 0; run < runs; run += 1) {
    for (const [design, measure] of Object.entries(designs)) {
      const result = await measure();
      log(`alternatives, ${design}, run ${run + 1}: ${JSON.stringify(result)}`);
      measured[design]?.push(result);
    }
  }
  return {
    quota,
    latency: INDEX_FACES_LATENCY,
    slowLatency: SLOW_INDEX_FACES_LATENCY,
    byDesign: Object.fromEntries(
      Object.entries(measured).map(([design, results]) => [
        design,
        {
          medianSteadyUse: median(results.map((result) => result.steadyUse)),
          medianThrottledShare: median(results.map((result) => result.throttledShare)),
          runs: results,
        },
      ]),
    ),
  };
}
