/**
 * Many collections in one run, end to end: old collections on face model 6.0 with their photos in
 * S3, `reindex plan --out` writing their records files and plan file, `reindex start --plan --wait`
 * migrating each into its own target, and `reindex status` of the plan.
 */
import { randomUUID } from 'node:crypto';
import { CreateCollectionCommand, IndexFacesCommand } from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { type PlanProgress, type PlanSummary, type RunProgress, SEARCH_ATTRIBUTES } from '../../src/shared';
import { lastLine, runCli } from '../helpers/cli';
import { createRunResources, eventually, facesIn, rekognitionAdmin, resultRows, type RunResources } from '../helpers/runs';
import { type RunningWorker, startWorker } from '../helpers/worker';

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
    for (const collection of Object.keys(OLD)) await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: resources.ownCollection(collection) }));
  } finally {
    await rekognitionAdmin('settings', 'PUT', { currentFaceModelVersion: '7.0' });
  }
  for (const [collection, photos] of Object.entries(OLD)) {
    resources.ownCollection(`${collection}-v7`);
    for (const [i, people] of photos.entries()) {
      const name = `${collection}-${i}`;
      const faces = people.map((person, k) => ({ person, box: [0.05 + 0.3 * k, 0.2, 0.2, 0.3] as [number, number, number, number] }));
      await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key: `${prefix}${name}.png`, Body: syntheticPng(faces) }));
      await aws.rekognition.send(new IndexFacesCommand({ CollectionId: collection, Image: { S3Object: { Bucket: config.bucket, Name: `${prefix}${name}.png` } }, ExternalImageId: name, QualityFilter: 'NONE' }));
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
    ['plan', '--collections', ...Object.keys(OLD), '--tps', '10', '--out', `s3://${bucket}/plans/${suite}/`, '--target-template', '{collection}-v7', '--key-from', 'external-image-id', '--bucket', bucket, '--prefix', prefix, '--suffix', '.png', '--json'],
    worker.cliEnv,
  );
  expect(planned.stderr).toBe('');
  const planId = `plan-${suite}`;

  const started = await runCli(['start', '--plan', `s3://${bucket}/plans/${suite}/plan.json`, '--id', planId, '--collections-in-flight', '2', '--wait', '--json'], worker.cliEnv);

  expect(started.stderr).toBe('');
  expect(started.code).toBe(0);
  const summary = JSON.parse(lastLine(started.stdout)) as PlanSummary;
  expect(summary).toMatchObject({ workflowId: planId, status: 'completed', totals: { images: 5, faces: 8, matched: 8, dlq: 0 } });
  for (const [collection, photos] of Object.entries(OLD)) {
    const target = `${collection}-v7`;
    const run = summary.collections.find((state) => state.targetCollectionId === target);
    expect(run).toMatchObject({ workflowId: `${planId}/${target}`, state: 'completed', summary: { sourceCollectionId: collection, images: photos.length, matched: photos.flat().length } });
    expect(await facesIn(resources, target)).toHaveLength(photos.flat().length);
    const described = await client.workflow.getHandle(`${planId}/${target}`).describe();
    expect(described.typedSearchAttributes.get(SEARCH_ATTRIBUTES.phase)).toBe('done');
    expect((await resultRows(resources, `${planId}/${target}`)).every((row) => row.CollectionId === target && row.SourceCollectionId === collection)).toBe(true);
  }
  const status = await runCli(['status', planId], worker.cliEnv);
  expect(status.stdout).toContain(`${planId}: plan completed`);
  expect(status.stdout).toContain(`  tenant-a-${suite}-v7 completed: images 2, matched 3, DLQ 0 (${planId}/tenant-a-${suite}-v7)`);
  expect(status.stdout).toContain('  images 5, faces 8, matched 8, DLQ 0');
}, 240_000);

test('pause holds a plan and starts no other collection, resume goes on, cancel ends it with the rest not started', async () => {
  const { bucket } = resources.config;
  const out = `s3://${bucket}/plans/${suite}-steered/`;
  await runCli(['plan', '--collections', ...Object.keys(OLD), '--tps', '10', '--out', out, '--target-template', '{collection}-v7b', '--key-from', 'external-image-id', '--bucket', bucket, '--prefix', prefix, '--suffix', '.png'], worker.cliEnv);
  for (const collection of Object.keys(OLD)) resources.ownCollection(`${collection}-v7b`);
  const planId = `plan-steered-${suite}`;
  const status = async () => JSON.parse((await runCli(['status', planId, '--json'], worker.cliEnv)).stdout) as { status: string; progress?: PlanProgress; summary?: PlanSummary };
  // Slow enough that pause, resume and cancel all come while the first collection runs.
  await rekognitionAdmin('settings', 'PUT', { latency: { IndexFaces: { medianMs: 8_000, p99Ms: 10_000 } } });
  try {
    await runCli(['start', '--plan', `${out}plan.json`, '--id', planId, '--collections-in-flight', '1', '--images-in-flight', '1'], worker.cliEnv);
    await eventually(async () => (await status()).progress?.collections.some(({ state }) => state === 'running') ?? false);

    expect((await runCli(['pause', planId], worker.cliEnv)).code).toBe(0);
    const paused = await status();
    const first = paused.progress?.collections.find(({ state }) => state === 'running');
    expect(paused.progress).toMatchObject({ paused: true });
    expect(paused.progress?.collections.map(({ state }) => state).sort()).toEqual(['running', 'waiting']);
    await eventually(async () => (JSON.parse((await runCli(['status', first?.workflowId ?? '', '--json'], worker.cliEnv)).stdout) as { progress?: RunProgress }).progress?.paused === true);
    expect((await runCli(['status', planId], worker.cliEnv)).stdout).toContain(`${planId}: plan running, paused`);

    expect((await runCli(['resume', planId], worker.cliEnv)).code).toBe(0);
    expect((await status()).progress?.paused).toBe(false);
    expect((await runCli(['cancel', planId], worker.cliEnv)).code).toBe(0);
    await eventually(async () => (await status()).status !== 'RUNNING', 120_000);
  } finally {
    await rekognitionAdmin('settings', 'PUT', { latency: {} });
  }

  const ended = await status();
  expect(ended.summary?.status).toBe('cancelled');
  expect(ended.summary?.collections.map(({ state }) => state).sort()).toEqual(['cancelled', 'cancelled']);
}, 240_000);

test('start refuses a records file without a target, a plan beside --manifest, and a plan file that is not there, in one line with exit code 2', async () => {
  const withoutTarget = await runCli(['start', '--manifest', 's3://bucket/records.jsonl'], worker.cliEnv);
  const both = await runCli(['start', '--plan', 'plan.json', '--manifest', 's3://bucket/records.jsonl'], worker.cliEnv);
  const missing = `s3://${resources.config.bucket}/plans/none-${suite}.json`;
  const missingPlan = await runCli(['start', '--plan', missing], worker.cliEnv);

  expect([withoutTarget.code, withoutTarget.stderr]).toEqual([
    2,
    'reindex: --manifest needs --target, the collection its records go into; to migrate many collections, write a plan with `reindex plan --out` and start it with --plan\n',
  ]);
  expect([both.code, both.stderr]).toEqual([2, "reindex: --plan names each collection's records file, target and source: it goes without --manifest, --target and --source\n"]);
  expect([missingPlan.code, missingPlan.stderr]).toEqual([2, `reindex: the plan file ${missing} does not exist\n`]);
});
