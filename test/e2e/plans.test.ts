/**
 * Many collections in one run, end to end: old collections on face model 6.0 with their photos in
 * S3, `reindex plan --out` writing their records files and plan file, `reindex start --plan --wait`
 * migrating each into its own target, and `reindex status` of the plan.
 */
import { randomUUID } from 'node:crypto';
import { CreateCollectionCommand, IndexFacesCommand } from '@aws-sdk/client-rekognition';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { type PlanProgress, planProgressQuery, type PlanSummary, SEARCH_ATTRIBUTES } from '../../src/shared';
import { runStatus } from '../../src/cli/runs';
import { lastLine, runCli } from '../../harness/cli';
import {
  createRunResources,
  eventually,
  facesIn,
  type PhotoSpec,
  rekognitionAdmin,
  resultRows,
  type RunResources,
  takeReview,
  writeRecords,
} from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

let resources: RunResources;
let worker: RunningWorker;
let client: Client;
const suite = randomUUID().slice(0, 8);
const prefix = `plans-e2e-${suite}/`;
/** Each old collection's photos: the people in each. */
const OLD: Record<string, string[][]> = {
  [`tenant-a-${suite}`]: [['ana', 'ben'], ['cleo']],
  [`tenant-b-${suite}`]: [['dan'], ['eve'], ['fay', 'gus', 'hal']],
};

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  client = new Client({ connection: await Connection.connect(loadClientConnectConfig().connectionOptions) });
  const { aws, config } = resources;
  await rekognitionAdmin('settings', 'PUT', { currentFaceModelVersion: '6.0' });
  try {
    for (const collection of Object.keys(OLD))
      await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: resources.ownCollection(collection) }));
  } finally {
    await rekognitionAdmin('settings', 'PUT', { currentFaceModelVersion: '7.0' });
  }
  for (const [collection, photos] of Object.entries(OLD)) {
    resources.ownCollection(`${collection}-v7`);
    for (const [i, people] of photos.entries()) {
      const name = `${collection}-${i}`;
      const faces = people.map((person, k) => ({
        person,
        box: [0.05 + 0.3 * k, 0.2, 0.2, 0.3] as [number, number, number, number],
      }));
      await aws.s3.send(
        new PutObjectCommand({ Bucket: config.bucket, Key: `${prefix}${name}.png`, Body: syntheticPng(faces) }),
      );
      await aws.rekognition.send(
        new IndexFacesCommand({
          CollectionId: collection,
          Image: { S3Object: { Bucket: config.bucket, Name: `${prefix}${name}.png` } },
          ExternalImageId: name,
          QualityFilter: 'NONE',
        }),
      );
    }
  }
}, 120_000);

afterAll(async () => {
  await client?.connection.close();
  await worker?.stop();
  await resources?.release();
});

test('a plan of two old collections migrates each into its own target, and status shows the plan and each run', async () => {
  const { bucket } = resources.config;
  const planned = await runCli(
    [
      'plan',
      '--collections',
      ...Object.keys(OLD),
      '--tps',
      '10',
      '--out',
      `s3://${bucket}/plans/${suite}/`,
      '--target-template',
      '{collection}-v7',
      '--key-from',
      'external-image-id',
      '--bucket',
      bucket,
      '--prefix',
      prefix,
      '--suffix',
      '.png',
      '--json',
    ],
    worker.cliEnv,
  );
  expect(planned.stderr).toBe('');
  const planId = `plan-${suite}`;

  const started = await runCli(
    [
      'start',
      '--plan',
      `s3://${bucket}/plans/${suite}/plan.json`,
      '--id',
      planId,
      '--collections-in-flight',
      '2',
      '--wait',
      '--json',
    ],
    worker.cliEnv,
  );

  expect(started.stderr).toBe('');
  expect(started.code).toBe(0);
  const summary = JSON.parse(lastLine(started.stdout)) as PlanSummary;
  expect(summary).toMatchObject({
    workflowId: planId,
    status: 'completed',
    totals: { images: 5, faces: 8, matched: 8, dlq: 0 },
  });
  for (const [collection, photos] of Object.entries(OLD)) {
    const target = `${collection}-v7`;
    const run = summary.collections.find((state) => state.targetCollectionId === target);
    expect(run).toMatchObject({
      workflowId: `${planId}/${target}`,
      state: 'completed',
      summary: { sourceCollectionId: collection, images: photos.length, matched: photos.flat().length },
    });
    expect(await facesIn(resources, target)).toHaveLength(photos.flat().length);
    const described = await client.workflow.getHandle(`${planId}/${target}`).describe();
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.phase)).toBe('done');
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.collection)).toBe(target);
    expect(
      (await resultRows(resources, `${planId}/${target}`)).every(
        (row) => row.CollectionId === target && row.SourceCollectionId === collection,
      ),
    ).toBe(true);
  }
  const status = await runCli(['status', planId], worker.cliEnv);
  expect(status.stdout).toContain(`${planId}: plan completed`);
  expect(status.stdout).toContain(
    `  tenant-a-${suite}-v7 completed: images 2, matched 3, DLQ 0 (${planId}/tenant-a-${suite}-v7)`,
  );
  expect(status.stdout).toContain('  images 5, faces 8, matched 8, DLQ 0');
}, 240_000);

test('pause holds a plan and starts no other collection, resume goes on, cancel ends it with the rest not started', async () => {
  const { bucket } = resources.config;
  const out = `s3://${bucket}/plans/${suite}-steered/`;
  await runCli(
    [
      'plan',
      '--collections',
      ...Object.keys(OLD),
      '--tps',
      '10',
      '--out',
      out,
      '--target-template',
      '{collection}-v7b',
      '--key-from',
      'external-image-id',
      '--bucket',
      bucket,
      '--prefix',
      prefix,
      '--suffix',
      '.png',
    ],
    worker.cliEnv,
  );
  for (const collection of Object.keys(OLD)) resources.ownCollection(`${collection}-v7b`);
  const planId = `plan-steered-${suite}`;
  const status = async () =>
    JSON.parse((await runCli(['status', planId, '--json'], worker.cliEnv)).stdout) as {
      status: string;
      progress?: PlanProgress;
      summary?: PlanSummary;
    };
  // Slow enough that pause, resume and cancel all come while the first collection runs.
  await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 8_000, p99Ms: 10_000 } } });
  try {
    await runCli(
      ['start', '--plan', `${out}plan.json`, '--id', planId, '--collections-in-flight', '1', '--images-in-flight', '1'],
      worker.cliEnv,
    );
    // Waits ask Temporal from this process, as `reindex status` does, not through a command each poll.
    const plan = client.workflow.getHandle(planId);
    // A query before the plan's first workflow task is done fails: asked again.
    await eventually(
      async () =>
        (await plan.query(planProgressQuery).catch(() => undefined))?.collections.some(
          ({ state }) => state === 'running',
        ) ?? false,
    );

    expect((await runCli(['pause', planId], worker.cliEnv)).code).toBe(0);
    const paused = await status();
    const first = paused.progress?.collections.find(({ state }) => state === 'running');
    expect(paused.progress).toMatchObject({ paused: true });
    expect(paused.progress?.collections.map(({ state }) => state).sort()).toEqual(['running', 'waiting']);
    await eventually(async () => (await runStatus(client, first?.workflowId ?? '')).progress?.paused === true);
    expect((await runCli(['status', planId], worker.cliEnv)).stdout).toContain(`${planId}: plan running, paused`);

    expect((await runCli(['resume', planId], worker.cliEnv)).code).toBe(0);
    expect((await status()).progress?.paused).toBe(false);
    expect((await runCli(['cancel', planId], worker.cliEnv)).code).toBe(0);
    await eventually(async () => (await plan.describe()).status.name !== 'RUNNING', 120_000);
  } finally {
    await rekognitionAdmin('settings', 'PUT', { latency: {} });
  }

  const ended = await status();
  expect(ended.summary?.status).toBe('cancelled');
  expect(ended.summary?.collections.map(({ state }) => state).sort()).toEqual(['cancelled', 'cancelled']);
}, 240_000);

/**
 * A records file in the original's format:
 * each record names its collection, as `collections[i]` says; null leaves it out.
 */
async function recordsNaming(photos: PhotoSpec[], collections: (string | null)[]): Promise<string> {
  const { manifest } = await writeRecords(resources, photos);
  const { aws } = resources;
  const lines =
    (await (await aws.s3.send(new GetObjectCommand(manifest))).Body?.transformToString())?.split('\n') ?? [];
  const named = lines.map((line, i) => {
    const collection = collections[i];
    return collection === null || collection === undefined
      ? line
      : JSON.stringify({ ...(JSON.parse(line) as object), CollectionId: collection });
  });
  await aws.s3.send(new PutObjectCommand({ ...manifest, Body: named.join('\n') }));
  return `s3://${manifest.Bucket}/${manifest.Key}`;
}

const face = (person: string, k = 0) => ({
  person,
  box: [0.05 + 0.3 * k, 0.2, 0.2, 0.3] as [number, number, number, number],
});

test('a records file naming two collections, started without --target, puts each record into its own collection; started again, both are skipped', async () => {
  const small = resources.ownCollection(`records-small-${suite}`);
  const large = resources.ownCollection(`records-large-${suite}`);
  const photos: PhotoSpec[] = [
    { faces: [face('ivy'), face('jon', 1)] },
    { faces: [face('kim')] },
    { faces: [face('lou'), face('max', 1), face('ned', 2)] },
    { faces: [face('oli')] },
  ];
  const records = await recordsNaming(photos, [large, small, large, null]);
  const planId = `records-${suite}`;

  const started = await runCli(['start', '--records', records, '--id', planId, '--wait', '--json'], worker.cliEnv);

  expect(started.stderr).toBe('');
  expect(started.code).toBe(0);
  const summary = JSON.parse(lastLine(started.stdout)) as PlanSummary;
  expect(summary).toMatchObject({ status: 'completed', totals: { images: 3, faces: 6, matched: 6, dlq: 1 } });
  for (const [target, faces] of [
    [small, 1],
    [large, 5],
  ] as const) {
    expect(summary.collections.find((state) => state.targetCollectionId === target)).toMatchObject({
      workflowId: `${planId}/${target}`,
      state: 'completed',
    });
    expect(await facesIn(resources, target)).toHaveLength(faces);
    const rows = await resultRows(resources, `${planId}/${target}`);
    expect(rows).toHaveLength(faces);
    expect(new Set(rows.map((row) => row.CollectionId))).toEqual(new Set([target]));
  }
  // The record that names no collection is refused once, by the smallest collection's run.
  const refused = (await takeReview(resources)).filter((item) => item.runId.startsWith(`${planId}/`));
  expect(refused).toEqual([
    expect.objectContaining({
      runId: `${planId}/${small}`,
      reason: 'INVALID_RECORD',
      recordIndex: 3,
      detail: expect.stringContaining('CollectionId is missing') as unknown,
    }),
  ]);

  const exported = await runCli(
    [
      'export',
      planId,
      '--collection',
      large,
      '--csv',
      `s3://${resources.config.bucket}/exports/${suite}.csv`,
      '--json',
    ],
    worker.cliEnv,
  );
  expect(JSON.parse(lastLine(exported.stdout))).toMatchObject({ workflowId: `${planId}/${large}`, rows: 5 });
  const reported = await runCli(['report', planId, '--collection', small, '--json'], worker.cliEnv);
  expect(JSON.parse(lastLine(reported.stdout))).toMatchObject({
    runId: `${planId}/${small}`,
    summary: { targetCollectionId: small, images: 1, matched: 1 },
  });

  const again = await runCli(['start', '--manifest', records, '--id', `${planId}-again`], worker.cliEnv);

  expect(again.code).toBe(0);
  const skipped = again.stdout.split('\n').filter((line) => line.startsWith('skipped '));
  expect(skipped.map((line) => line.replace(/ at \S+ /, ' at <time> '))).toEqual([
    `skipped ${large}: run ${planId}/${large} migrated it at <time> (images 2, matched 5); --force migrates it again`,
    `skipped ${small}: run ${planId}/${small} migrated it at <time> (images 1, matched 1); --force migrates it again`,
  ]);
  expect(again.stdout).toContain(`nothing to migrate: every collection of ${records} was migrated before`);
}, 240_000);

test('start refuses, in one line with exit code 2: records naming more collections than --max-collections, an old collection or none, a plan beside a records file, a missing plan file', async () => {
  const photos: PhotoSpec[] = [{ faces: [face('pat')] }, { faces: [face('quin')] }];
  const tooMany = await recordsNaming(photos, [`many-a-${suite}`, `many-b-${suite}`]);
  const old = Object.keys(OLD)[0] ?? '';
  const intoOld = await recordsNaming(photos, [`fresh-${suite}`, old]);
  const unnamed = await recordsNaming(photos, [null, null]);
  const missing = `s3://${resources.config.bucket}/plans/none-${suite}.json`;

  const outcomes = await Promise.all(
    [
      ['start', '--manifest', tooMany, '--max-collections', '1'],
      ['start', '--manifest', intoOld],
      ['start', '--manifest', unnamed],
      ['start', '--plan', 'plan.json', '--manifest', 's3://bucket/records.jsonl'],
      ['start', '--plan', missing],
    ].map(async (args) => {
      const { code, stderr } = await runCli(args, worker.cliEnv);
      return [code, stderr];
    }),
  );

  expect(outcomes).toEqual([
    [
      2,
      `reindex: the records file ${tooMany} names more than 1 collections; raise --max-collections, or give --target to index every record into one collection\n`,
    ],
    [
      2,
      `reindex: ${old} holds faces this tool did not index, so it is an old collection, not one to migrate into: give each record the CollectionId of a new collection, or --target\n`,
    ],
    [2, `reindex: no record of ${unnamed} names a CollectionId to index into: give --target\n`],
    [
      2,
      "reindex: --plan names each collection's records file, target and source: it goes without --records, --target and --source\n",
    ],
    [2, `reindex: the plan file ${missing} does not exist\n`],
  ]);
  expect(await facesIn(resources, old)).toHaveLength(3);
});
