/**
 * AWS credentials never leave the processes that hold them. A worker process and `reindex` commands
 * run on distinctive fake credentials (moto and rekognition-local accept any), through a run in
 * which images fail, and afterwards neither the run's histories (parent and batch children, as the
 * Temporal server stores them) nor anything the worker or the CLI printed or wrote holds the key id,
 * the secret, the session token, or a presigned URL. The local services check no signatures, so a
 * signing failure, whose SDK error carries the signed request, is covered by
 * test/worker/activity-errors.test.ts instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { imageRef } from '../../src/domain/identifiers';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { type CliOutcome, lastLine, runCli } from '../../harness/cli';
import { createRunResources, resultRows, type RunResources, takeReview, writeRecords } from '../../harness/runs';
import { leakedIn, readableTexts, runHistories } from './histories';

const ROOT = path.resolve(__dirname, '../..');
const CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'AKIAREINDEXLEAKCHECK',
  AWS_SECRET_ACCESS_KEY: 'reindexLeakCheckSecret/0123456789+abcdefg',
  AWS_SESSION_TOKEN: `reindexLeakCheckSessionToken/${randomUUID()}`,
};
const PRESIGNED_URL_MARKERS = [
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
  'Signature=',
  'AWS4-HMAC-SHA256',
];

let resources: RunResources;
let env: NodeJS.ProcessEnv;
let worker: ChildProcess;
let workerLog = '';
let client: Client;
let outputFolder: string;

/** `npm run worker` as a deployment runs it, on the suite's own queues, table and task queue. */
async function startWorkerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--require', 'tsx/cjs', 'src/worker.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const capture = (chunk: Buffer) => (workerLog += chunk.toString());
  child.stdout?.on('data', capture);
  child.stderr?.on('data', capture);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', () => workerLog.includes('worker: polling') && resolve());
    child.once('exit', (code) => reject(new Error(`the worker ended with ${code}: ${workerLog}`)));
  });
  return child;
}

beforeAll(async () => {
  resources = await createRunResources();
  outputFolder = mkdtempSync(path.join(tmpdir(), 'reindex-secrets-'));
  env = {
    ...process.env,
    ...CREDENTIALS,
    REINDEX_RESULTS_TABLE: resources.config.resultsTable,
    REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
    REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
    REINDEX_TASK_QUEUE: `reindex-secrets-${randomUUID().slice(0, 8)}`,
  };
  worker = await startWorkerProcess();
  client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
}, 120_000);

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    // The worker stops on SIGINT once its tasks in flight finish.
    worker.kill('SIGINT');
    await once(worker, 'exit');
  }
  await client?.connection.close();
  await resources?.release();
  rmSync(outputFolder, { recursive: true, force: true });
});

test("a run with failing images leaves no credential or presigned URL in its histories, the worker's log or the CLI's output, and no image key in the log", async () => {
  const face = { person: 'ana', box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] };
  const { manifest } = await writeRecords(
    resources,
    [
      { faces: [face] },
      { faces: [face], missing: true },
      { faces: [{ person: 'bo', box: [0.1, 0.3, 0.3, 0.3] }] },
      { faces: [face], missing: true },
    ],
    ['{"Bucket": "no closing brace"'],
  );
  const target = resources.ownCollection(`secrets-${randomUUID()}`);
  const id = `secrets-${randomUUID()}`;
  const html = path.join(outputFolder, 'report.html');
  const cli: CliOutcome[] = [];
  const reindex = async (...args: string[]) => {
    const outcome = await runCli(args, env);
    cli.push(outcome);
    return outcome;
  };

  const started = await reindex(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--id',
    id,
    '--quality-filter',
    'NONE',
    '--batch-size',
    '2',
    '--wait',
    '--json',
  );
  await reindex('status', id);
  await reindex('dlq', 'list', '--run', id, '--json');
  await reindex('report', id, '--html', html);

  expect(started.code).toBe(0);
  expect(JSON.parse(lastLine(started.stdout)) as RunSummary).toMatchObject({
    status: 'completed',
    matched: 2,
    dlq: 3,
    dlqByReason: { [ReasonCode.ImageNotFound]: 2, [ReasonCode.InvalidRecord]: 1 },
  });
  expect(await resultRows(resources, id)).toHaveLength(2);
  const missingKeys = (await takeReview(resources)).flatMap((item) =>
    item.reason === ReasonCode.ImageNotFound && item.Key ? [item.Key] : [],
  );
  expect(missingKeys).toHaveLength(2);
  expect(cli.map((outcome) => outcome.code)).toEqual([0, 0, 0, 0]);

  const histories = await runHistories(client, id);
  expect(histories.size).toBe(3);
  const texts = [
    ...readableTexts(histories),
    workerLog,
    ...cli.flatMap((outcome) => [outcome.stdout, outcome.stderr]),
    readFileSync(html, 'utf8'),
  ];
  // The search finds what is there: without encryption, the histories name the failed images.
  expect(leakedIn(readableTexts(histories), missingKeys)).toEqual(missingKeys);
  // The worker's log names them by a hash only, which their DLQ messages show beside the key.
  expect(leakedIn([workerLog], missingKeys)).toEqual([]);
  const refs = missingKeys.map((Key) => imageRef(manifest.Bucket, Key));
  expect(leakedIn([workerLog], refs)).toEqual(refs);
  expect(leakedIn(texts, [...Object.values(CREDENTIALS), ...PRESIGNED_URL_MARKERS])).toEqual([]);
}, 60_000);
