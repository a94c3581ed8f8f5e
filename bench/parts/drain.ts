/**
 * Drain: does the drain into DynamoDB keep up with the images publishing their rows? A migration of
 * many images of several faces each at no quota, so rows come as fast as the stack can index; the
 * run's own `resultsMaxWaitMs` (the longest a row waited in the results queue, from each message's
 * SentTimestamp) against the goal of five minutes, and the queue's depth sampled while it runs.
 */
import { GetQueueAttributesCommand, type QueueAttributeName } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import type { ReindexCollectionInput } from '../../src/shared';
import { type PhotoSpec, type RunResources, writeRecords } from '../../test/helpers/runs';
import { migrate } from '../lib/migration';
import { median } from '../lib/rates';
import { type Sample, setTraffic } from '../lib/stack';
import { NO_RATE_LIMIT } from './headroom';

/** The project's goal: no row waits longer than this in the results queue. */
const MAX_WAIT_GOAL_MS = 5 * 60_000;

/**
 * SQS has no queue attribute for the age of the oldest message (that age is CloudWatch's metric
 * ApproximateAgeOfOldestMessage); moto is asked for it once anyway, and its answer kept.
 */
const OLDEST_AGE = 'ApproximateAgeOfOldestMessage' as QueueAttributeName;

interface QueueSample {
  atMs: number;
  /** ApproximateNumberOfMessages: rows waiting for the drain. */
  visible: number;
  /** ApproximateNumberOfMessagesNotVisible: rows the drain took and has not deleted yet. */
  inFlight: number;
  oldestAgeSeconds: number | undefined;
}

/** Images of `faces` faces each, side by side, from ten photos: many records and rows, ten uploads. */
async function writeImagesOfFaces(resources: RunResources, images: number, faces: number): Promise<ReindexCollectionInput['manifest']> {
  const width = 0.9 / faces;
  const face = (i: number, k: number): DeclaredFace => ({ person: `p${(i + k) % 10}`, box: [0.05 + k * width, 0.3, width * 0.8, 0.3] });
  const photos: PhotoSpec[] = Array.from({ length: images }, (_, i) => ({ faces: Array.from({ length: faces }, (__, k) => face(i, k)) }));
  return (await writeRecords(resources, photos)).manifest;
}

/** Whether moto answers the age of the queue's oldest message, and what it said. */
async function oldestAgeAnswer({ aws, config }: RunResources): Promise<{ answered: boolean; answer: string }> {
  try {
    const { Attributes = {} } = await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: config.resultsQueueUrl, AttributeNames: [OLDEST_AGE] }));
    return { answered: OLDEST_AGE in Attributes, answer: JSON.stringify(Attributes) };
  } catch (error) {
    return { answered: false, answer: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/** The results queue's depth (and the oldest message's age, when moto answers it) every `everyMs` until stopped. */
function sampleQueue({ aws, config }: RunResources, withOldestAge: boolean, everyMs = 5_000): { stop(): Promise<QueueSample[]> } {
  const samples: QueueSample[] = [];
  let running = true;
  const names: QueueAttributeName[] = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', ...(withOldestAge ? [OLDEST_AGE] : [])];
  const loop = (async () => {
    while (running) {
      const { Attributes = {} } = await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: config.resultsQueueUrl, AttributeNames: names }));
      const age = Attributes[OLDEST_AGE];
      samples.push({
        atMs: Date.now(),
        visible: Number(Attributes.ApproximateNumberOfMessages ?? 0),
        inFlight: Number(Attributes.ApproximateNumberOfMessagesNotVisible ?? 0),
        oldestAgeSeconds: age === undefined ? undefined : Number(age),
      });
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** IndexFaces successes by the time of a queue sample: how far the publishing had come. */
const indexedBy = (indexing: Sample[], atMs: number): number => indexing.filter((sample) => sample.atMs <= atMs).at(-1)?.succeeded ?? 0;

async function measureDrain(resources: RunResources, client: Client, manifest: ReindexCollectionInput['manifest'], settings: { images: number; batchSize: number; withOldestAge: boolean }) {
  const queue = sampleQueue(resources, settings.withOldestAge);
  const migration = await migrate({ resources, client, manifest, tps: NO_RATE_LIMIT, input: { batchSize: settings.batchSize } });
  const samples = await queue.stop();
  const { summary } = migration;
  if (!summary) throw new Error(`run ${migration.workflowId} ended without a summary`);
  if (summary.resultsMaxWaitMs === undefined) throw new Error(`run ${migration.workflowId} did not drain continuously: its summary has no resultsMaxWaitMs`);
  // Times count from the first sample, taken as the worker starts, a few seconds before the run.
  const startMs = samples[0]?.atMs ?? 0;
  const seconds = (atMs: number) => Math.round((atMs - startMs) / 1000);
  const deepest = samples.reduce<QueueSample | undefined>((most, sample) => (most && most.visible >= sample.visible ? most : sample), undefined);
  const lastIndexed = migration.samples.find((sample) => sample.succeeded === migration.samples.at(-1)?.succeeded);
  const ages = samples.flatMap((sample) => (sample.oldestAgeSeconds === undefined ? [] : [sample.oldestAgeSeconds]));
  return {
    workflowId: migration.workflowId,
    images: summary.images,
    faces: summary.faces,
    resultsWritten: summary.resultsWritten,
    resultsMaxWaitSeconds: summary.resultsMaxWaitMs / 1000,
    meetsGoal: summary.resultsMaxWaitMs < MAX_WAIT_GOAL_MS,
    durationSeconds: summary.durationMs / 1000,
    imagesPerSecond: summary.images / (summary.durationMs / 1000),
    wallSeconds: migration.wallSeconds,
    largestDepth: deepest?.visible ?? 0,
    largestDepthAtSeconds: deepest ? seconds(deepest.atMs) : undefined,
    largestInFlight: Math.max(0, ...samples.map((sample) => sample.inFlight)),
    largestSampledOldestAgeSeconds: ages.length > 0 ? Math.max(...ages) : undefined,
    lastIndexedAtSeconds: lastIndexed ? seconds(lastIndexed.atMs) : undefined,
    cpuSeconds: migration.cpuSeconds,
    workerPeakRssMiB: migration.workerPeakRssMiB[0],
    queueSamples: samples.map((sample) => ({
      atSeconds: seconds(sample.atMs),
      indexed: indexedBy(migration.samples, sample.atMs),
      visible: sample.visible,
      inFlight: sample.inFlight,
      ...(sample.oldestAgeSeconds === undefined ? {} : { oldestAgeSeconds: sample.oldestAgeSeconds }),
    })),
  };
}

export async function drain(
  resources: RunResources,
  client: Client,
  { images, faces, batchSize, runs }: { images: number; faces: number; batchSize: number; runs: number },
  log: (line: string) => void,
) {
  const manifest = await writeImagesOfFaces(resources, images, faces);
  await setTraffic({ quota: undefined, latency: undefined });
  const oldestAge = await oldestAgeAnswer(resources);
  log(`drain: moto ${oldestAge.answered ? 'answers' : 'does not answer'} ${OLDEST_AGE} (${oldestAge.answer})`);
  const measured = [];
  for (let run = 0; run < runs; run += 1) {
    const result = await measureDrain(resources, client, manifest, { images, batchSize, withOldestAge: oldestAge.answered });
    const { queueSamples, ...figures } = result;
    log(`drain, run ${run + 1}: ${JSON.stringify(figures)}`);
    measured.push(result);
  }
  return {
    images,
    faces,
    batchSize,
    goalSeconds: MAX_WAIT_GOAL_MS / 1000,
    oldestAgeAttribute: oldestAge,
    medianResultsMaxWaitSeconds: median(measured.map((run) => run.resultsMaxWaitSeconds)),
    medianLargestDepth: median(measured.map((run) => run.largestDepth)),
    medianImagesPerSecond: median(measured.map((run) => run.imagesPerSecond)),
    runs: measured,
  };
}
