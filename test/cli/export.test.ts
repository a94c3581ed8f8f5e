/**
 * `reindex export` after a real run: the CSV holds the run's rows, and only them, under the
 * original solution's columns plus IoU, written to a local file or to S3.
 */
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parse } from 'csv-parse/sync';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { createRunResources, resultRows, type RunResources, writeRecords } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

/** The files the commands write, removed at the end: they hold rows of faces. */
const directory = mkdtempSync(path.join(tmpdir(), 'export-test-'));
let resources: RunResources;
let worker: RunningWorker;
let runId: string;

const reindex = (...args: string[]) => runCli(args, worker.cliEnv);

async function migrate(): Promise<string> {
  const face = (person: string, left: number) => ({
    person,
    box: [left, 0.2, 0.25, 0.3] as [number, number, number, number],
  });
  const { manifest } = await writeRecords(resources, [
    { faces: [face('ana', 0.1)], userId: 'user-ana' },
    { faces: [face('bo', 0.1), face('cy', 0.55)] },
    { faces: [face('dee', 0.3)], missing: true },
  ]);
  const target = resources.ownCollection(`export-${randomUUID()}`);
  const outcome = await reindex(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--quality-filter',
    'NONE',
    '--wait',
    '--json',
  );
  expect(outcome.code).toBe(0);
  return (JSON.parse(lastLine(outcome.stdout)) as RunSummary).workflowId;
}

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  runId = await migrate();
  // A second run in the same table: its rows must stay out of the first run's export.
  await migrate();
}, 180_000);

afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  await worker?.stop();
  await resources?.release();
});

test('the CSV holds every row of the run, and only those, with the original columns plus IoU', async () => {
  const out = path.join(directory, `export-${randomUUID()}.csv`);
  const outcome = await reindex('export', runId, '--csv', out, '--segments', '3');
  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  expect(outcome.stdout).toBe(`exported 3 rows of run ${runId} to ${out}\n`);

  const text = await readFile(out, 'utf8');
  expect(text.split('\n')[0]).toBe('UserID,FaceId,OldFaceId,ImageId,OldImageId,ExternalImageId,Bucket,File,IoU');
  const exported = parse<Record<string, string>>(text, { columns: true });
  const rows = await resultRows(resources, runId);
  expect(rows).toHaveLength(3);
  const expected = rows.map((row) => ({
    UserID: row.UserId ?? '',
    FaceId: row.FaceId,
    OldFaceId: row.OldFaceId,
    ImageId: row.ImageId,
    OldImageId: row.OldImageId ?? '',
    ExternalImageId: row.ExternalImageId ?? '',
    Bucket: row.Bucket,
    File: row.Key,
    IoU: String(row.IoU),
  }));
  const byOldFace = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    String(a.OldFaceId).localeCompare(String(b.OldFaceId));
  expect(exported.sort(byOldFace)).toEqual(expected.sort(byOldFace));
  expect(exported.map((row) => row.UserID)).toContain('user-ana');
});

test('to S3, as one object', async () => {
  const Key = `exports/${randomUUID()}.csv`;
  const outcome = await reindex('export', runId, '--csv', `s3://${resources.config.bucket}/${Key}`, '--json');
  expect(outcome.code).toBe(0);
  expect(JSON.parse(lastLine(outcome.stdout))).toEqual({
    workflowId: runId,
    rows: 3,
    csv: `s3://${resources.config.bucket}/${Key}`,
  });
  const { Body } = await resources.aws.s3.send(new GetObjectCommand({ Bucket: resources.config.bucket, Key }));
  expect(parse<Record<string, string>>((await Body?.transformToString()) ?? '', { columns: true })).toHaveLength(3);
});

test('bad input is one line and exit code 2, and no file is left behind', async () => {
  const out = path.join(directory, `export-${randomUUID()}.csv`);
  const cases: [string[], string][] = [
    [
      ['export', 'no-such-run', '--csv', out],
      `reindex: no run no-such-run: the results table ${resources.config.resultsTable} has no rows of it and the bucket no summary\n`,
    ],
    [
      ['export', runId, '--csv', '/nonexistent-dir/out.csv'],
      'reindex: the CSV file /nonexistent-dir/out.csv cannot be written: ENOENT\n',
    ],
    [
      ['export', runId, '--csv', 's3://no-such-bucket-anywhere/out.csv'],
      'reindex: the bucket no-such-bucket-anywhere of the CSV file does not exist\n',
    ],
    [['export', runId], "reindex: error: required option '--csv <file>' not specified\n"],
  ];
  for (const [args, stderr] of cases) {
    const outcome = await reindex(...args);
    expect({ args, code: outcome.code, stderr: outcome.stderr }).toEqual({ args, code: 2, stderr });
  }
  await expect(stat(out)).rejects.toThrow('ENOENT');
});
