/**
 * Temporal past one machine: the worker and `reindex` find their server through a profile of a
 * temporal.toml (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE), as they would a self-hosted cluster or
 * Temporal Cloud, with no TEMPORAL_ADDRESS anywhere. The profile names a dev server of the file's
 * own on a port of its own; the run lands there, and the stack's server at the default address
 * never hears of it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { type RunningDevServer, startDevServer } from '../../harness/dev-server';
import { type RealWorker, startRealWorker } from '../../harness/real-worker';
import { createRunResources, type RunResources, writeRecords } from '../../harness/runs';

const PROFILE = 'reindex-elsewhere';

let resources: RunResources;
let server: RunningDevServer;
let worker: RealWorker;
let configDir: string;
let env: NodeJS.ProcessEnv;
/** The stack's server, where a worker or CLI that ignored the profile would have gone. */
let stackAddress: string;

beforeAll(async () => {
  resources = await createRunResources();
  stackAddress = process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
  server = await startDevServer();
  configDir = mkdtempSync(path.join(tmpdir(), 'reindex-profile-'));
  const configFile = path.join(configDir, 'temporal.toml');
  writeFileSync(
    configFile,
    `[profile.default]\naddress = "${stackAddress}"\n\n[profile.${PROFILE}]\naddress = "${server.address}"\nnamespace = "default"\n`,
  );
  // Nothing of Temporal's from the stack's environment: the profile alone says where the server is.
  const withoutTemporal = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('TEMPORAL_')),
  );
  env = {
    ...withoutTemporal,
    TEMPORAL_CONFIG_FILE: configFile,
    TEMPORAL_PROFILE: PROFILE,
    REINDEX_RESULTS_TABLE: resources.config.resultsTable,
    REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
    REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
    REINDEX_TASK_QUEUE: `reindex-profile-${randomUUID().slice(0, 8)}`,
  };
  worker = await startRealWorker(env);
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await server?.release();
  await resources?.release();
  if (configDir) rmSync(configDir, { recursive: true, force: true });
});

async function describeOn(address: string, workflowId: string) {
  const connection = await Connection.connect({ address });
  try {
    return await new Client({ connection }).workflow.getHandle(workflowId).describe();
  } finally {
    await connection.close();
  }
}

test('worker and CLI reach the server a temporal.toml profile names, and a run completes there', async () => {
  const face = { person: 'ana', box: [0.2, 0.2, 0.4, 0.4] as [number, number, number, number] };
  const { manifest } = await writeRecords(resources, [
    { faces: [face] },
    { faces: [{ person: 'bo', box: [0.1, 0.3, 0.3, 0.3] }] },
    { faces: [face], missing: true },
  ]);
  const target = resources.ownCollection(`profile-${randomUUID()}`);

  const started = await runCli(
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
    env,
  );

  expect(started.stderr).toBe('');
  expect(started.code).toBe(0);
  const summary = JSON.parse(lastLine(started.stdout)) as RunSummary;
  expect(summary).toMatchObject({
    status: 'completed',
    images: 3,
    matched: 2,
    dlqByReason: { [ReasonCode.ImageNotFound]: 1 },
  });
  expect(worker.stdout()).toContain(`on ${server.address}, namespace default`);

  const status = await runCli(['status', summary.workflowId, '--json'], env);
  expect(status.code).toBe(0);
  expect(JSON.parse(lastLine(status.stdout))).toMatchObject({ workflowId: summary.workflowId, status: 'COMPLETED' });

  expect((await describeOn(server.address, summary.workflowId)).status.name).toBe('COMPLETED');
  await expect(describeOn(stackAddress, summary.workflowId)).rejects.toBeInstanceOf(WorkflowNotFoundError);
}, 120_000);
