/**
 * A records file with one record of hundreds of megabytes (over 1 GB with REINDEX_HEAVY_TESTS=1,
 * as `npm run test:chaos` runs it), between ordinary records, as JSON Lines and as a JSON array.
 * The test streams it into S3 without ever holding it; the run must refuse the huge record as
 * INVALID_RECORD, with its size, without holding it either (the worker's memory is sampled while it
 * reads), and migrate the ordinary records around it.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { count } from '../../src/domain/format';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { createRunResources, resultRows, type RunResources, takeReview } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';
import { CASES, expand, type Filling, putImages, testPrefix } from './corpus';

const MIB = 1024 * 1024;
const HEAVY = process.env.REINDEX_HEAVY_TESTS === '1';
/** The huge record's padding: over 1 GB when heavy, enough to show any buffering otherwise. */
const PADDING_BYTES = (HEAVY ? 1100 : 256) * MIB;
/** What the worker's process may grow by while it reads: well under the record's size, generous for the rest. */
const MEMORY_GROWTH_CEILING = Math.min(400 * MIB, PADDING_BYTES / 2);

let resources: RunResources;
let worker: RunningWorker;
let filling: Filling;

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  filling = { bucket: resources.config.bucket, prefix: testPrefix() };
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await resources?.release();
});

const ordinary = (n: number) =>
  JSON.stringify({
    Bucket: filling.bucket,
    Key: `${filling.prefix}/ordinary-${n}.png`,
    ExternalImageId: `ordinary-${n}`,
    Faces: [
      { FaceId: randomUUID(), ImageId: randomUUID(), BoundingBoxes: { Width: 0.3, Height: 0.4, Left: 0.2, Top: 0.2 } },
    ],
  });

/** The huge record: an ordinary one whose unknown member Padding holds PADDING_BYTES of text. */
function* hugeRecord(): Generator<Buffer> {
  const start = ordinary(2).replace(/}$/, ',"Padding":"');
  yield Buffer.from(start);
  const block = Buffer.alloc(MIB, 'x');
  for (let written = 0; written < PADDING_BYTES; written += MIB) yield block;
  yield Buffer.from('"}');
}
const hugeRecordBytes = () => Buffer.byteLength(ordinary(2)) - 1 + ',"Padding":"'.length + PADDING_BYTES + 2;

/** Records 0 to 4, record 2 the huge one: JSON Lines, or a JSON array with one record a line. */
function* recordsFile(form: 'lines' | 'array'): Generator<Buffer> {
  const [open, between, close] = form === 'lines' ? ['', '\n', '\n'] : ['[\n', ',\n', '\n]\n'];
  yield Buffer.from(`${open}${ordinary(0)}${between}${ordinary(1)}${between}`);
  yield* hugeRecord();
  yield Buffer.from(`${between}${ordinary(3)}${between}${ordinary(4)}${close}`);
}

interface MemoryGrowth {
  /** The JavaScript heap and the Buffers outside it: where a record held whole would be. */
  js: number;
  rss: number;
}

/** How far this process's memory (the worker's) grew above where it was while `work` ran, sampled every 100 ms. */
async function memoryGrowthDuring<T>(work: () => Promise<T>): Promise<{ result: T; growth: MemoryGrowth }> {
  const js = ({ heapUsed, arrayBuffers }: NodeJS.MemoryUsage) => heapUsed + arrayBuffers;
  const before = process.memoryUsage();
  const peak = { js: js(before), rss: before.rss };
  const sampler = setInterval(() => {
    const now = process.memoryUsage();
    peak.js = Math.max(peak.js, js(now));
    peak.rss = Math.max(peak.rss, now.rss);
  }, 100);
  try {
    const result = await work();
    return { result, growth: { js: peak.js - js(before), rss: peak.rss - before.rss } };
  } finally {
    clearInterval(sampler);
  }
}

test.each([
  ['JSON Lines', 'lines', 'record over 1 GB, JSON Lines'],
  ['a JSON array', 'array', 'record over 1 GB, JSON array'],
] as const)(
  `a record of ${count(PADDING_BYTES / MIB)} MiB in %s is refused with its size, unread, and the records around it migrate`,
  async (_, form, caseName) => {
    const stated = CASES.find((testCase) => testCase.name === caseName)?.outcome;
    if (!stated || !('run' in stated)) throw new Error(`the corpus has no run outcome for ${caseName}`);
    const Key = `${filling.prefix}/records/huge-${form}.${form === 'lines' ? 'jsonl' : 'json'}`;
    for (const n of [0, 1, 3, 4]) await putImages(resources.aws.s3, filling.bucket, Buffer.from(ordinary(n)));
    const uploadStarted = Date.now();
    // Parts of 16 MiB, two in flight: the test holds 32 MiB of the file at most.
    await new Upload({
      client: resources.aws.s3,
      params: { Bucket: filling.bucket, Key, Body: Readable.from(recordsFile(form)) },
      partSize: 16 * MIB,
      queueSize: 2,
    }).done();
    const uploadMs = Date.now() - uploadStarted;

    try {
      const runStarted = Date.now();
      const { result: outcome, growth } = await memoryGrowthDuring(() =>
        runCli(
          [
            'start',
            '--manifest',
            `s3://${filling.bucket}/${Key}`,
            '--target',
            resources.ownCollection(`bad-input-${randomUUID()}`),
            '--quality-filter',
            'NONE',
            '--wait',
            '--json',
          ],
          worker.cliEnv,
        ),
      );
      const runMs = Date.now() - runStarted;
      console.info(
        `${form}: ${count(hugeRecordBytes())}-byte record; upload ${(uploadMs / 1000).toFixed(1)} s, run ${(runMs / 1000).toFixed(1)} s; worker's heap and buffers +${count(growth.js / MIB)} MiB, RSS +${count(growth.rss / MIB)} MiB at most`,
      );

      expect(outcome).toMatchObject({ code: 0, stderr: '' });
      const summary = JSON.parse(lastLine(outcome.stdout)) as RunSummary;
      expect(summary.status).toBe('completed');
      expect((await resultRows(resources, summary.workflowId)).map((row) => row.Key).sort()).toEqual(
        stated.run.migrated.map((key) => `${filling.prefix}/${key}`).sort(),
      );
      const values = { bytes: count(hugeRecordBytes()) };
      expect(
        (await takeReview(resources)).map((item) => ({
          index: item.recordIndex,
          reason: item.reason,
          detail: item.detail,
        })),
      ).toEqual(
        stated.run.dlq.map((item) => ({
          index: item.index,
          reason: item.reason,
          detail: expand(item.detail ?? '', values),
        })),
      );
      expect(growth.js).toBeLessThan(MEMORY_GROWTH_CEILING);
      expect(growth.rss).toBeLessThan(MEMORY_GROWTH_CEILING);
    } finally {
      await resources.aws.s3.send(new DeleteObjectCommand({ Bucket: filling.bucket, Key }));
    }
  },
  HEAVY ? 600_000 : 180_000,
);
