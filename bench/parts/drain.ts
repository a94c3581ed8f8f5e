/**
 * Drain: does the drain into DynamoDB keep up with the images publishing their rows? A migration of
 * many images of several faces each at no quota, so rows come as fast as the stack can index; the
 * run's own `resultsMaxWaitMs` (the longest a row waited in the results queue, from each message's
 * SentTimestamp) against the goal of five minutes, and the queue's depth sampled while it runs.
 * A run this stack cannot finish in the time given is ended then, and what it had come to is kept:
 * its progress, and the age of the oldest row still waiting.
 */
import { GetQueueAttributesCommand, type QueueAttributeName, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import type { ReindexCollectionInput, RunProgress, RunSummary } from '../../src/shared';
import { type PhotoSpec, type RunResources, writeRecords } from '../../harness/runs';
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
async function writeImagesOfFaces(
  resources: RunResources,
  images: number,
  faces: number,
): Promise<ReindexCollectionInput['manifest']> {
  const width = 0.9 / faces;
  const face = (i: number, k: number): DeclaredFace => ({
    person: `p${(i + k) % 10}`,
    box: [0.05 + k * width, 0.3, width * 0.8, 0.3],
  });
  const photos: PhotoSpec[] = Array.from({ length: images }, (_, i) => ({
    faces: Array.from({ length: faces }, (__, k) => face(i, k)),
  }));
  return (await writeRecords(resources, photos)).manifest;
}

/** Whether moto answers the age of the queue's oldest message, and what it said. */
async function oldestAgeAnswer({ aws, config }: RunResources): Promise<{ answered: boolean; answer: string }> {
  try {
    const { Attributes = {} } = await aws.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: config.resultsQueueUrl, AttributeNames: [OLDEST_AGE] }),
    );
    return { answered: OLDEST_AGE in Attributes, answer: JSON.stringify(Attributes) };
  } catch (error) {
    return { answered: false, answer: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/**
 * How long the oldest row still in the results queue has waited. moto hands messages out oldest
 * first (SQS promises no order), so the first ten it hands out hold the oldest; they stay visible.
 * Only for a run about to be ended: a received message is one the drain cannot take meanwhile.
 */
async function oldestWaitingMs({ aws, config }: RunResources): Promise<number | undefined> {
  const { Messages = [] } = await aws.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: config.resultsQueueUrl,
      MaxNumberOfMessages: 10,
      VisibilityTimeout: 0,
      MessageSystemAttributeNames: ['SentTimestamp'],
    }),
  );
  const sent = Messages.map((message) => Number(message.Attributes?.SentTimestamp)).filter(Number.isFinite);
  return sent.length > 0 ? Date.now() - Math.min(...sent) : undefined;
}

/** The results queue's depth (and the oldest message's age, when moto answers it) every `everyMs` until stopped. */
function sampleQueue(
  { aws, config }: RunResources,
  withOldestAge: boolean,
  everyMs = 5_000,
): { stop(): Promise<QueueSample[]> } {
  const samples: QueueSample[] = [];
  let running = true;
  const names: QueueAttributeName[] = [
    'ApproximateNumberOfMessages',
    'ApproximateNumberOfMessagesNotVisible',
    ...(withOldestAge ? [OLDEST_AGE] : []),
  ];
  const loop = (async () => {
    while (running) {
      const { Attributes = {} } = await aws.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: config.resultsQueueUrl, AttributeNames: names }),
      );
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
const indexedBy = (indexing: Sample[], atMs: number): number =>
  indexing.filter((sample) => sample.atMs <= atMs).at(-1)?.succeeded ?? 0;

/** Figures of a run that ended by itself, from its summary. */
function ended(summary: RunSummary) {
  if (summary.resultsMaxWaitMs === undefined)
    throw new Error(`run ${summary.workflowId} did not drain continuously: its summary has no resultsMaxWaitMs`);
  return {
    completed: true,
    images: summary.images,
    faces: summary.faces,
    resultsWritten: summary.resultsWritten,
    resultsMaxWaitSeconds: summary.resultsMaxWaitMs / 1000,
    meetsGoal: summary.resultsMaxWaitMs < MAX_WAIT_GOAL_MS,
    durationSeconds: summary.durationMs / 1000,
    imagesPerSecond: summary.images / (summary.durationMs / 1000),
  };
}

/**
 * Figures of a run ended when its time was up, from its progress then: the images its finished
 * batches reported, the rows drained, and the longest wait of a row drained so far. A row still
 * waiting may have waited longer (`oldestWaitingSeconds`).
 */
function stopped(
  progress: RunProgress,
  oldestWaiting: number | undefined,
  { indexed, wallSeconds }: { indexed: number; wallSeconds: number },
) {
  const longest = Math.max(progress.resultsMaxWaitMs ?? 0, oldestWaiting ?? 0);
  return {
    completed: false,
    phase: progress.phase,
    batchesDone: progress.batches.done,
    images: progress.totals.images,
    resultsWritten: progress.resultsWritten,
    resultsMaxWaitSeconds: progress.resultsMaxWaitMs === undefined ? undefined : progress.resultsMaxWaitMs / 1000,
    oldestWaitingSeconds: oldestWaiting === undefined ? undefined : oldestWaiting / 1000,
    meetsGoal: longest < MAX_WAIT_GOAL_MS ? undefined : false,
    durationSeconds: wallSeconds,
    /** Images the service indexed over the time given: finished batches report theirs only at their end. */
    imagesPerSecond: indexed / wallSeconds,
  };
}

async function measureDrain(
  resources: RunResources,
  client: Client,
  manifest: ReindexCollectionInput['manifest'],
  settings: { images: number; batchSize: number; withOldestAge: boolean; stopAfterMs: number | undefined },
) {
  const queue = sampleQueue(resources, settings.withOldestAge);
  // The oldest waiting row is looked at just before the run is ended and its queues purged;
  // not at all if it ends sooner.
  const look = new AbortController();
  const lastLook =
    settings.stopAfterMs === undefined
      ? Promise.resolve(undefined)
      : sleep(settings.stopAfterMs - 2_000, undefined, { signal: look.signal }).then(
          () => oldestWaitingMs(resources),
          () => undefined,
        );
  const migration = await migrate({
    resources,
    client,
    manifest,
    tps: NO_RATE_LIMIT,
    input: { batchSize: settings.batchSize },
    stopAfterMs: settings.stopAfterMs,
  });
  look.abort();
  const oldestWaiting = await lastLook;
  const samples = await queue.stop();
  const { summary, progress } = migration;
  const indexed = migration.samples.at(-1)?.succeeded ?? 0;
  let figures;
  if (summary) figures = ended(summary);
  else if (progress) figures = stopped(progress, oldestWaiting, { indexed, wallSeconds: migration.wallSeconds });
  else throw new Error(`run ${migration.workflowId} ended without a summary`);
  // Times count from the first sample, taken as the worker starts, a few seconds before the run.
  const startMs = samples[0]?.atMs ?? 0;
  const seconds = (atMs: number) => Math.round((atMs - startMs) / 1000);
  const deepest = samples.reduce<QueueSample | undefined>(
    (most, sample) => (most && most.visible >= sample.visible ? most : sample),
    undefined,
  );
  const lastIndexed = migration.samples.find((sample) => sample.succeeded === migration.samples.at(-1)?.succeeded);
  const ages = samples.flatMap((sample) => (sample.oldestAgeSeconds === undefined ? [] : [sample.oldestAgeSeconds]));
  return {
    workflowId: migration.workflowId,
    ...figures,
    wallSeconds: migration.wallSeconds,
    indexed,
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
  {
    images,
    faces,
    batchSize,
    runs,
    stopAfterMinutes,
  }: { images: number; faces: number; batchSize: number; runs: number; stopAfterMinutes: number | undefined },
  log: (line: string) => void,
) {
  const manifest = await writeImagesOfFaces(resources, images, faces);
  await setTraffic({ quota: undefined, latency: undefined });
  const oldestAge = await oldestAgeAnswer(resources);
  log(`drain: moto ${oldestAge.answered ? 'answers' : 'does not answer'} ${OLDEST_AGE} (${oldestAge.answer})`);
  const measured = [];
  for (let run = 0; run < runs; run += 1) {
    const stopAfterMs = stopAfterMinutes === undefined ? undefined : stopAfterMinutes * 60_000;
    const result = await measureDrain(resources, client, manifest, {
      images,
      batchSize,
      withOldestAge: oldestAge.answered,
      stopAfterMs,
    });
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
    medianResultsMaxWaitSeconds: median(measured.map((run) => run.resultsMaxWaitSeconds ?? Number.NaN)),
    medianLargestDepth: median(measured.map((run) => run.largestDepth)),
    runs: measured,
  };
}
