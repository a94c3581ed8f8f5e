/**
 * End to end on the local stack, as an operator runs it: a worker polling the dev server, and
 * `reindex start|status|pause|resume|cancel` in their own processes. Afterwards the checks are the
 * operator's: rows in DynamoDB, messages in the review DLQ with their reasons, and a target that
 * holds exactly the migrated faces.
 */
import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { temporal } from '@temporalio/proto';
import { ReasonCode } from '../../src/domain/reasons';
import { type RunProgress, type RunSummary, taskQueues } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { type RunningWorker, startWorker } from '../../harness/worker';
import {
  createRunResources,
  eventually,
  facesIn,
  rekognitionAdmin,
  resultRow,
  resultRows,
  type RunResources,
  signedRowMessage,
  takeReview,
  usersIn,
  writeRecords,
} from '../../harness/runs';

let resources: RunResources;
let worker: RunningWorker;
let cliEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  cliEnv = worker.cliEnv;
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await resources?.release();
});

afterEach(async () => {
  await rekognitionAdmin('settings', 'PUT', { quotas: {}, latency: {}, faultRate: 0 });
});

test('a records file of every kind of image: the summary, the rows, the DLQ and the target agree', async () => {
  const solo = { person: 'ana', box: [0.1, 0.1, 0.3, 0.3] as [number, number, number, number] };
  const trio = ['bo', 'cy', 'dee'].map((person, i) => ({
    person,
    box: [0.05 + i * 0.32, 0.3, 0.25, 0.3] as [number, number, number, number],
  }));
  const stranger = { person: 'eve', box: [0.6, 0.6, 0.3, 0.3] as [number, number, number, number] };
  const userFace = (person: string) => ({ person, box: [0.3, 0.2, 0.35, 0.4] as [number, number, number, number] });
  const { manifest, oldFaceIds } = await writeRecords(
    resources,
    [
      { faces: [solo] },
      { faces: trio },
      { faces: [], oldFaces: [solo] },
      { faces: [solo], missing: true },
      { faces: [userFace('fay')], userId: 'user-fay' },
      { faces: [userFace('fay-again')], userId: 'user-fay' },
      { faces: [solo, stranger], oldFaces: [solo] },
    ],
    [JSON.stringify({ Bucket: resources.config.bucket, Key: 'nobody.png', Faces: [] })],
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);

  const outcome = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--quality-filter',
      'NONE',
      '--wait',
      '--json',
    ],
    cliEnv,
  );

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  const summary = JSON.parse(lastLine(outcome.stdout)) as RunSummary;
  expect(summary).toMatchObject({
    status: 'completed',
    images: 7,
    faces: 9,
    matched: 7,
    unmatchedOld: 1,
    unmatchedNewDeleted: 1,
    dlq: 3,
    dlqByReason: { [ReasonCode.NoFaceDetected]: 1, [ReasonCode.ImageNotFound]: 1, [ReasonCode.InvalidRecord]: 1 },
    usersCreated: 1,
    facesAssociated: 2,
    orphansDeleted: 0,
  });
  expect(summary.report?.json).toBe(`s3://${resources.config.bucket}/runs/${summary.workflowId}/report/summary.json`);

  const rows = await resultRows(resources, summary.workflowId);
  expect(rows).toHaveLength(7);
  const review = await takeReview(resources);
  expect(review.map((item) => item.reason).sort()).toEqual([
    ReasonCode.ImageNotFound,
    ReasonCode.InvalidRecord,
    ReasonCode.NoFaceDetected,
  ]);
  // Every old face of a valid record is a row or a DLQ message, exactly once.
  const accounted = [
    ...rows.map((row) => row.OldFaceId),
    ...review.flatMap((item) => (item.face ? [item.face.FaceId] : [])),
  ];
  expect(accounted.sort()).toEqual([...oldFaceIds].sort());
  expect(await facesIn(resources, target)).toEqual(rows.map((row) => row.FaceId).sort());
  expect(await usersIn(resources, target)).toEqual(['user-fay']);
  expect(rows.filter((row) => row.UserId === 'user-fay')).toHaveLength(2);
}, 120_000);

test('rows SQS moved to the results DLQ are counted in the summary, and requeue-results writes them to the table', async () => {
  const { manifest } = await writeRecords(resources, [{ faces: [{ person: 'gus', box: [0.2, 0.2, 0.4, 0.4] }] }]);
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  const stranded = [resultRow(id, target), resultRow(id, target)];
  // As SQS leaves them after five receives no drain finished: this run's rows, another run's, a
  // forged row naming this run, and a body that is no row.
  const messages = [
    ...(await Promise.all(
      [...stranded, resultRow('another-run', target)].map((row) => signedRowMessage(resources, row)),
    )),
    { MessageBody: JSON.stringify(resultRow(id, target)) },
    { MessageBody: 'not a row' },
  ];
  for (const message of messages)
    await resources.aws.sqs.send(new SendMessageCommand({ QueueUrl: resources.resultsDlqUrl, ...message }));

  const outcome = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--id',
      id,
      '--wait',
      '--json',
    ],
    cliEnv,
  );

  expect(outcome.code).toBe(0);
  expect(JSON.parse(lastLine(outcome.stdout))).toMatchObject({ status: 'completed', matched: 1, resultsInDlq: 2 });
  expect((await runCli(['status', id], cliEnv)).stdout).toContain(
    `2 result rows in the results DLQ: their faces are in the target without a row; \`reindex dlq requeue-results --run ${id}\` sends them back`,
  );
  expect(lastLine((await runCli(['dlq', 'requeue-results', '--run', id, '--dry-run'], cliEnv)).stdout)).toBe(
    `would send back 2 result rows of run ${id} (the results DLQ holds 3 other messages)`,
  );

  const requeued = await runCli(['dlq', 'requeue-results', '--run', id, '--wait', '--json'], cliEnv);

  expect(requeued.code).toBe(0);
  expect(JSON.parse(lastLine(requeued.stdout))).toMatchObject({ rows: 2, removed: 2, written: 2 });
  const rows = await resultRows(resources, id);
  expect(rows.map((r) => r.OldFaceId).sort()).toEqual(expect.arrayContaining(stranded.map((r) => r.OldFaceId)));
  expect(rows).toHaveLength(3);
  const left = await resources.aws.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: resources.resultsDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  const bodies = (left.Messages ?? []).map((message) => message.Body ?? '');
  expect(bodies).toHaveLength(3);
  expect(bodies).toEqual(
    expect.arrayContaining([
      'not a row',
      expect.stringContaining('"RunId":"another-run"') as string,
      expect.stringContaining(`"RunId":"${id}"`) as string,
    ]),
  );
}, 120_000);

test('status, pause, resume and cancel from the command line', async () => {
  // Five images, then every IndexFaces call throttled: the run cannot end before it is cancelled.
  await rekognitionAdmin('settings', 'PUT', { quotas: { IndexFaces: { tps: 0.0001, burst: 5 } } });
  const { manifest } = await writeRecords(
    resources,
    Array.from({ length: 30 }, (_, i) => ({
      faces: [{ person: `p${i % 4}`, box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] }],
    })),
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  const cli = (...args: string[]) => runCli(args, cliEnv);
  const progress = async () =>
    JSON.parse((await cli('status', id, '--json')).stdout) as { status: string; progress?: RunProgress };

  const started = await cli(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--id',
    id,
    '--batch-size',
    '5',
    '--batches-in-flight',
    '1',
    '--images-in-flight',
    '1',
  );
  expect(started.code).toBe(0);
  expect(started.stdout).toContain(`started ${id}`);

  expect((await cli('pause', id)).stdout.trim()).toBe(`paused ${id}`);
  expect((await progress()).progress).toMatchObject({ paused: true });
  expect((await cli('resume', id)).code).toBe(0);
  expect((await progress()).progress).toMatchObject({ paused: false });
  expect((await cli('cancel', id)).stdout.trim()).toBe(`cancellation requested for ${id}`);

  await eventually(async () => (await progress()).status !== 'RUNNING', 60_000);
  expect((await progress()).status).toBe('CANCELLED');
  const text = await cli('status', id);
  expect(text.stdout.split('\n')[0]).toMatch(new RegExp(`^${id}: cancelled`));
  expect(await facesIn(resources, target)).toEqual((await resultRows(resources, id)).map((row) => row.FaceId).sort());
  expect((await cli('pause', id)).stderr.trim()).toBe(`reindex: run ${id} is cancelled, not running`);
}, 120_000);

test('status --follow shows the run move, its pause, and its end', async () => {
  // Five images, then every IndexFaces call throttled until the test lets the run go on after its pause.
  await rekognitionAdmin('settings', 'PUT', { quotas: { IndexFaces: { tps: 0.0001, burst: 5 } } });
  const { manifest } = await writeRecords(
    resources,
    Array.from({ length: 20 }, (_, i) => ({
      faces: [{ person: `p${i % 4}`, box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] }],
    })),
  );
  const target = resources.ownCollection(`e2e-${randomUUID()}`);
  const id = `e2e-${randomUUID()}`;
  const cli = (...args: string[]) => runCli(args, cliEnv);
  expect(
    (
      await cli(
        'start',
        '--manifest',
        `s3://${manifest.Bucket}/${manifest.Key}`,
        '--target',
        target,
        '--id',
        id,
        '--batch-size',
        '5',
        '--batches-in-flight',
        '1',
        '--images-in-flight',
        '1',
      )
    ).code,
  ).toBe(0);

  let shown = '';
  const following = runCli(['status', id, '--follow', '--json', '--interval', '0.3'], cliEnv, (chunk) => {
    shown += chunk;
  });
  /** Whether a whole line `status --follow` has printed so far shows this. */
  const hasShown = (check: (progress: RunProgress) => boolean) => () =>
    Promise.resolve(
      shown
        .split('\n')
        .slice(0, -1)
        .some((line) => {
          const { progress } = JSON.parse(line) as { progress?: RunProgress };
          return progress !== undefined && check(progress);
        }),
    );
  await eventually(
    hasShown((progress) => progress.totals.images >= 3),
    60_000,
  );
  await cli('pause', id);
  await eventually(
    hasShown((progress) => progress.paused),
    60_000,
  );
  await rekognitionAdmin('settings', 'PUT', { quotas: {} });
  await cli('resume', id);
  const followed = await following;

  expect(followed.code).toBe(0);
  const lines = followed.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { status: string; progress?: RunProgress });
  expect(lines.at(-1)).toEqual({ workflowId: id, status: 'COMPLETED' });
  const seen = lines.flatMap((line) => (line.progress ? [line.progress] : []));
  const images = seen.map((progress) => progress.totals.images);
  expect(images).toEqual([...images].sort((a, b) => a - b));
  expect(images.at(-1)).toBe(20);
  expect(seen.some((progress) => progress.paused)).toBe(true);
  expect(seen.some((progress) => progress.imagesTotal === 20)).toBe(true);
}, 120_000);

test.each([
  [
    ['start', '--manifest', 's3://no-such-bucket-here/records.jsonl', '--target', 't'],
    /^reindex: the records file s3:\/\/no-such-bucket-here\/records\.jsonl does not exist\n$/,
  ],
  [
    ['start', '--manifest', 'records.jsonl', '--target', 't'],
    /^reindex: "records\.jsonl" is not an S3 URI of the form s3:\/\/bucket\/key\n$/,
  ],
  [
    ['start', '--manifest', 's3://b/k', '--target', 't', '--iou', '2'],
    /^reindex: error: option '--iou <threshold>' argument '2' is invalid\. --iou must be a number from 0\.01 to 1\n$/,
  ],
  [
    ['start'],
    /^reindex: say what to migrate: --records <s3-uri> \(with --target, or each record's CollectionId\), or --plan <file>\n$/,
  ],
  [
    ['start', '--records', 's3://b/a', '--manifest', 's3://b/k', '--target', 't'],
    /^reindex: --manifest is the older name of --records: give the records file once\n$/,
  ],
  [['status', 'no-such-run'], /^reindex: no run has the id no-such-run\n$/],
])('bad input %j is one line on stderr and exit code 2', async (args, message) => {
  const outcome = await runCli(args, cliEnv);

  expect(outcome.stderr).toMatch(message);
  expect(outcome.code).toBe(2);
});

test('an unreachable Temporal is one line on stderr and exit code 2', async () => {
  const outcome = await runCli(['status', 'any'], { ...cliEnv, TEMPORAL_ADDRESS: '127.0.0.1:1' });

  expect(outcome.stderr).toMatch(/^reindex: cannot reach Temporal at 127\.0\.0\.1:1: .*\n$/);
  expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
  expect(outcome.code).toBe(2);
});

describe('--tps', () => {
  let client: Client;
  const queue = () => ({
    namespace: 'default',
    taskQueue: taskQueues(worker.taskQueue).indexFaces,
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });

  beforeAll(async () => {
    client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  });

  afterAll(async () => {
    // Back to the rate the workers ask for, so later runs on this server are not held to the test's.
    await client.workflowService.updateTaskQueueConfig({ ...queue(), identity: 'test', updateQueueRateLimit: {} });
    await client.connection.close();
  });

  test('sets the IndexFaces rate on the Temporal server for every worker', async () => {
    const { manifest } = await writeRecords(resources, [{ faces: [{ person: 'gil', box: [0.2, 0.2, 0.4, 0.4] }] }]);
    const target = resources.ownCollection(`e2e-${randomUUID()}`);

    const outcome = await runCli(
      [
        'start',
        '--manifest',
        `s3://${manifest.Bucket}/${manifest.Key}`,
        '--target',
        target,
        '--tps',
        '37',
        '--wait',
        '--json',
      ],
      cliEnv,
    );

    expect(outcome.code).toBe(0);
    const { config } = await client.workflowService.describeTaskQueue({
      namespace: queue().namespace,
      taskQueue: { name: queue().taskQueue },
      taskQueueType: queue().taskQueueType,
      reportConfig: true,
    });
    expect(config?.queueRateLimit?.rateLimit?.requestsPerSecond).toBe(37);
    // The run has ended: its status is its summary, and the rate it set outlives it.
    const { workflowId } = JSON.parse(lastLine(outcome.stdout)) as RunSummary;
    const ended = JSON.parse((await runCli(['status', workflowId, '--json'], cliEnv)).stdout) as {
      status: string;
      summary?: RunSummary;
    };
    expect(ended).toMatchObject({ status: 'COMPLETED', summary: { workflowId, images: 1, matched: 1, dlq: 0 } });
    expect((await runCli(['status', workflowId], cliEnv)).stdout).toMatch(
      /: completed.*\n {2}images 1, old faces 1\n {2}matched 1, old faces unmatched 0\n/,
    );
    const held = await runCli(['rate'], cliEnv);
    expect(held.stdout.trim()).toMatch(
      /^IndexFaces rate in force: 37\/s, held on the Temporal server \(reindex start --tps 37, \d{4}-\d\d-\d\dT[\d:.]+Z\) for every run until `reindex rate --reset`$/,
    );
  }, 60_000);

  test('a small migration queued behind a large one takes turns with it on the IndexFaces queue instead of waiting for its backlog', async () => {
    const photos = (who: string, count: number) =>
      Array.from({ length: count }, (_, i) => ({
        faces: [{ person: `${who}-${i}`, box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] }],
      }));
    const [large, small] = [
      await writeRecords(resources, photos('large', 80)),
      await writeRecords(resources, photos('small', 4)),
    ];
    const start = (manifest: typeof large.manifest, id: string, images: number) =>
      runCli(
        [
          'start',
          '--manifest',
          `s3://${manifest.Bucket}/${manifest.Key}`,
          '--target',
          resources.ownCollection(id),
          '--id',
          id,
          '--batch-size',
          String(images),
          '--images-in-flight',
          String(images),
        ],
        cliEnv,
      );
    // Asked in this process, not through a command each poll.
    const ended = async (id: string) => (await client.workflow.getHandle(id).describe()).status.name === 'COMPLETED';
    const backlog = async () => {
      const { stats } = await client.workflowService.describeTaskQueue({
        namespace: queue().namespace,
        taskQueue: { name: queue().taskQueue },
        taskQueueType: queue().taskQueueType,
        reportStats: true,
      });
      return Number(stats?.approximateBacklogCount ?? 0);
    };
    const [largeId, smallId] = [`e2e-large-${randomUUID()}`, `e2e-small-${randomUUID()}`];
    // Next to no image goes through until both runs have queued theirs, the large run's first:
    // then the order is the queue's alone.
    await runCli(['rate', '--tps', '0.01'], cliEnv);
    try {
      await start(large.manifest, largeId, 80);
      await eventually(async () => (await backlog()) >= 78, 60_000);
      await start(small.manifest, smallId, 4);
      await eventually(async () => (await backlog()) >= 82, 60_000);
      await runCli(['rate', '--tps', '8'], cliEnv);
      await eventually(async () => (await ended(largeId)) && (await ended(smallId)), 90_000);
    } finally {
      await runCli(['rate', '--reset'], cliEnv);
    }

    const migratedAt = async (id: string) =>
      (await resultRows(resources, id)).map((row) => Date.parse(row.MigratedAt)).sort((a, b) => a - b);
    const [largeTimes, smallTimes] = [await migratedAt(largeId), await migratedAt(smallId)];
    expect([largeTimes.length, smallTimes.length]).toEqual([80, 4]);
    // In order of arrival the small run's images would all come after the large run's;
    // taking turns, they are done with most of the large run to go.
    const smallDone = smallTimes[3] ?? 0;
    expect(largeTimes.filter((time) => time > smallDone).length).toBeGreaterThanOrEqual(60);
  }, 240_000);

  test("`reindex rate` shows the rate in force, holds another for every worker, and resets to the workers' own; status shows it", async () => {
    const rate = async (...args: string[]) =>
      JSON.parse((await runCli(['rate', ...args, '--json'], cliEnv)).stdout) as {
        tps?: number;
        source: string;
        override?: { reason: string };
      };

    expect(await rate('--tps', '12')).toMatchObject({
      tps: 12,
      source: 'override',
      override: { reason: 'reindex rate --tps 12' },
    });
    const { manifest } = await writeRecords(
      resources,
      Array.from({ length: 6 }, () => ({
        faces: [{ person: 'hal', box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] }],
      })),
    );
    await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 300, p99Ms: 400 } } });
    const id = `e2e-${randomUUID()}`;
    await runCli(
      [
        'start',
        '--manifest',
        `s3://${manifest.Bucket}/${manifest.Key}`,
        '--target',
        resources.ownCollection(`e2e-${randomUUID()}`),
        '--id',
        id,
        '--images-in-flight',
        '1',
      ],
      cliEnv,
    );
    // Paused as soon as it starts, the run stays running while status is asked twice, however slow
    // the machine: a run paused after its last image would still drain, report and end.
    expect((await runCli(['pause', id], cliEnv)).stdout.trim()).toBe(`paused ${id}`);
    await eventually(
      async () =>
        (JSON.parse((await runCli(['status', id, '--json'], cliEnv)).stdout) as { progress?: unknown }).progress !==
        undefined,
    );
    const running = await runCli(['status', id], cliEnv);
    expect(running.stdout).toContain(
      '  IndexFaces rate in force: 12/s, held on the Temporal server (reindex rate --tps 12',
    );
    expect(
      (JSON.parse((await runCli(['status', id, '--json'], cliEnv)).stdout) as { rate?: { tps: number } }).rate?.tps,
    ).toBe(12);

    expect(await rate('--reset')).toEqual({ tps: 1000, source: 'workers' });
    expect((await runCli(['rate', '--tps', '3', '--reset'], cliEnv)).stderr.trim()).toBe(
      'reindex: --tps and --reset cannot go together',
    );
    expect((await runCli(['resume', id], cliEnv)).code).toBe(0);
    await eventually(
      async () =>
        (JSON.parse((await runCli(['status', id, '--json'], cliEnv)).stdout) as { status: string }).status !==
        'RUNNING',
      60_000,
    );
  }, 90_000);
});
