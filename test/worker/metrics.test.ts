/**
 * What an operator watching a worker sees: `npm run worker` with REINDEX_METRICS_ADDRESS and
 * REINDEX_LOG_FORMAT=json, a run through it, and its Prometheus endpoint scraped while the run goes
 * and after it ends. Temporal's own worker metrics are there, and the project's counters agree
 * with the run's summary and with the IndexFaces calls Rekognition saw. The file has a
 * rekognition-local of its own, so those calls are this run's alone and its latency setting slows
 * no other suite.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { METRICS } from '../../src/metrics';
import { ReasonCode } from '../../src/domain/reasons';
import { type RunSummary, taskQueues } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { freePort } from '../../harness/ports';
import { type RealWorker, startRealWorker } from '../../harness/real-worker';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';
import { createRunResources, type PhotoSpec, type RunResources, writeRecords } from '../../harness/runs';

let resources: RunResources;
let rekognition: RunningRekognition;
let worker: RealWorker;
let env: NodeJS.ProcessEnv;
let metricsUrl: string;
const taskQueue = `reindex-metrics-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  resources = await createRunResources();
  rekognition = await startRekognitionLocal();
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${metricsAddress}/metrics`;
  env = {
    ...process.env,
    AWS_ENDPOINT_URL_REKOGNITION: rekognition.endpoint,
    REINDEX_RESULTS_TABLE: resources.config.resultsTable,
    REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
    REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
    REINDEX_TASK_QUEUE: taskQueue,
    REINDEX_METRICS_ADDRESS: metricsAddress,
    REINDEX_LOG_FORMAT: 'json',
  };
  worker = await startRealWorker(env);
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await rekognition?.stop();
  await resources?.release();
});

// ------------------------------------------------------------------------------------ scraping

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in Prometheus's text format (`name{a="b",...} value`). */
function samples(text: string, name: string): Sample[] {
  return text.split('\n').flatMap((line) => {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) return [];
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      labels[key ?? ''] = value ?? '';
    return [{ labels, value: Number(match[3]) }];
  });
}

/** The sum of a metric's samples whose labels include `where`. */
function total(text: string, name: string, where: Record<string, string> = {}): number {
  return samples(text, name)
    .filter((sample) => Object.entries(where).every(([key, value]) => sample.labels[key] === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

async function scrape(): Promise<string> {
  const response = await fetch(metricsUrl);
  expect(response.status).toBe(200);
  return response.text();
}

async function indexFacesCalls(): Promise<number> {
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Record<string, { calls: number }>;
  return counters.IndexFaces?.calls ?? 0;
}

// --------------------------------------------------------------------------------------- tests

const box = (left: number, top: number): [number, number, number, number] => [left, top, 0.3, 0.3];

/** Matched faces, two faces an image, no face found, a box the new model does not overlap, missing images. */
const photos: PhotoSpec[] = [
  ...Array.from({ length: 10 }, (_, i): PhotoSpec => ({ faces: [{ person: `p${i % 5}`, box: box(0.2, 0.2) }] })),
  {
    faces: [
      { person: 'ana', box: box(0.05, 0.3) },
      { person: 'bo', box: box(0.6, 0.3) },
    ],
  },
  { faces: [], oldFaces: [{ person: 'cy', box: box(0.2, 0.2) }] },
  { faces: [], oldFaces: [{ person: 'dee', box: box(0.4, 0.4) }] },
  { faces: [{ person: 'eve', box: box(0.65, 0.65) }], oldFaces: [{ person: 'eve', box: box(0.02, 0.02) }] },
  { faces: [{ person: 'fay', box: box(0.2, 0.2) }], missing: true },
  { faces: [{ person: 'gil', box: box(0.2, 0.2) }], missing: true },
];

test("the endpoint serves Temporal's worker metrics and the run's own figures, during the run and after it", async () => {
  // Slow enough that the run lasts seconds, so the endpoint is scraped while it goes.
  await rekognition.admin('PUT', '/_admin/settings', { latency: { IndexFaces: { medianMs: 400, p99Ms: 500 } } });
  const { manifest } = await writeRecords(resources, photos, ['{"Bucket": "no closing brace"']);
  const target = `metrics-${randomUUID()}`;
  const callsBefore = await indexFacesCalls();
  const queues = taskQueues(taskQueue);

  const running = runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--quality-filter',
      'NONE',
      '--batch-size',
      '4',
      '--batches-in-flight',
      '1',
      '--images-in-flight',
      '2',
      '--wait',
      '--json',
    ],
    env,
  );
  let during = '';
  const deadline = Date.now() + 60_000;
  while (total(during, `${METRICS.indexFacesLatency}_count`) < 2) {
    if (Date.now() > deadline) throw new Error('no IndexFaces latency on the endpoint within 60 s of the start');
    await new Promise((resolve) => setTimeout(resolve, 200));
    during = await scrape();
  }
  const outcome = await running;
  const after = await scrape();

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  const summary = JSON.parse(lastLine(outcome.stdout)) as RunSummary;
  expect(summary).toMatchObject({
    status: 'completed',
    images: 16,
    matched: 12,
    dlqByReason: {
      [ReasonCode.NoFaceDetected]: 2,
      [ReasonCode.IouBelowThreshold]: 1,
      [ReasonCode.ImageNotFound]: 2,
      [ReasonCode.InvalidRecord]: 1,
    },
  });
  const calls = (await indexFacesCalls()) - callsBefore;
  expect(calls).toBe(16);

  // During the run: Temporal's slot gauges for the IndexFaces queue, and some, not all, IndexFaces calls.
  expect(
    samples(during, 'temporal_worker_task_slots_available').some(
      (s) => s.labels.task_queue === queues.indexFaces && s.labels.worker_type === 'ActivityWorker',
    ),
  ).toBe(true);
  expect(
    samples(during, 'temporal_worker_task_slots_used').some(
      (s) => s.labels.task_queue === queues.indexFaces && s.labels.worker_type === 'ActivityWorker',
    ),
  ).toBe(true);
  expect(total(during, `${METRICS.indexFacesLatency}_count`)).toBeLessThan(calls);

  // After it: Temporal's own counts of this worker's workflows and activities.
  expect(
    total(after, 'temporal_workflow_completed', { workflow_type: 'reindexCollection', task_queue: queues.control }),
  ).toBe(1);
  expect(
    total(after, 'temporal_workflow_completed', { workflow_type: 'reindexBatch', task_queue: queues.control }),
  ).toBe(4);
  expect(
    total(after, 'temporal_activity_execution_latency_count', {
      activity_type: 'reindexImage',
      task_queue: queues.indexFaces,
    }),
  ).toBe(16);
  expect(
    total(after, 'temporal_activity_execution_failed', {
      activity_type: 'reindexImage',
      task_queue: queues.indexFaces,
    }),
  ).toBe(2);
  expect(
    total(after, 'temporal_worker_task_slots_used', { task_queue: queues.indexFaces, worker_type: 'ActivityWorker' }),
  ).toBe(0);

  // The project's figures agree with the summary and with Rekognition's count of calls.
  expect(total(after, METRICS.facesMatched)).toBe(summary.matched);
  const reasons = [...new Set(samples(after, METRICS.dlqMessages).map((s) => s.labels.reason ?? ''))];
  expect(Object.fromEntries(reasons.map((reason) => [reason, total(after, METRICS.dlqMessages, { reason })]))).toEqual(
    summary.dlqByReason,
  );
  expect(total(after, `${METRICS.indexFacesLatency}_count`)).toBe(calls);
  expect(total(after, `${METRICS.indexFacesLatency}_count`, { outcome: 'ok' })).toBe(14);
  expect(total(after, `${METRICS.indexFacesLatency}_count`, { outcome: 'refused' })).toBe(2);
  // Latencies in milliseconds: 16 calls of about 400 ms each.
  expect(total(after, `${METRICS.indexFacesLatency}_sum`) / calls).toBeGreaterThan(200);
  expect(total(after, `${METRICS.indexFacesLatency}_bucket`, { outcome: 'ok', le: '+Inf' })).toBe(14);
}, 120_000);

test('with REINDEX_LOG_FORMAT=json every line the worker writes is one JSON object, the failures of activities among them', () => {
  const lines = worker
    .stdout()
    .split('\n')
    .filter((line) => line !== '');
  const entries = lines.map(
    (line) => JSON.parse(line) as { timestamp: string; level: string; message: string; meta: Record<string, unknown> },
  );

  expect(worker.stderr()).toBe('');
  for (const entry of entries) {
    expect(Object.keys(entry)).toEqual(['timestamp', 'level', 'message', 'meta']);
    expect(new Date(entry.timestamp).toISOString()).toBe(entry.timestamp);
    expect(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR']).toContain(entry.level);
    expect(typeof entry.message).toBe('string');
    expect(typeof entry.meta).toBe('object');
  }
  const polling = entries.find((entry) => entry.message.startsWith('worker: polling'));
  // No REINDEX_TPS, and the local stack's Service Quotas knows no Rekognition quota: the worker says what it assumed.
  expect(polling?.message).toMatch(
    /\(IndexFaces at most 25\/s: a default: half of 50\/s, Rekognition's documented IndexFaces quota in us-east-1, since the account's own could not be read from Service Quotas \([^)]+\); set REINDEX_TPS to your quota or below it\)/,
  );
  expect(polling?.meta).toEqual({
    taskQueues: [taskQueue, taskQueues(taskQueue).indexFaces],
    metricsAddress: new URL(metricsUrl).host,
  });
  // The two missing images of the run above: the activity's failure, with its error's name, reason code and message.
  const failures = entries.filter((entry) => entry.meta.activityType === 'reindexImage' && entry.level === 'WARN');
  expect(failures).toHaveLength(2);
  for (const failure of failures) {
    expect(failure.meta.error).toMatchObject({
      name: 'ApplicationFailure',
      type: ReasonCode.ImageNotFound,
      message: expect.stringMatching(/^IndexFaces refused image [0-9a-f]{12}: /) as unknown,
    });
  }
});

test('a metrics address that is not an IP address and a port stops the worker at start with exit code 2', async () => {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'src/worker.ts'], {
    cwd: path.resolve(__dirname, '../..'),
    env: { ...env, REINDEX_METRICS_ADDRESS: 'localhost:9464' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];

  expect(stderr).toBe(
    'worker: invalid configuration: REINDEX_METRICS_ADDRESS must be an IP address and a port to serve Prometheus metrics on, such as 0.0.0.0:9464 or 127.0.0.1:9464\n',
  );
  expect(code).toBe(2);
});
