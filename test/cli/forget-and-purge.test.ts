/**
 * `reindex forget` and `reindex purge` after a real run on the local stack: a person named by user
 * or by face leaves the target, the table, the ledger, the run's chunks and the DLQ, and no one else
 * does; a run's working data is tagged for expiry when it ends, and purge removes it.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createLedger } from '../../src/stores/ledger';
import { createRunObjects } from '../../src/stores/run-objects';
import type { Forgotten } from '../../src/cli/forget';
import type { Purged } from '../../src/cli/purge';
import type { ChunkEntry } from '../../src/activities/manifest';
import { ReasonCode } from '../../src/domain/reasons';
import { chunkKey, reportKey, RUN_ENDED_TAG, type RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { facesIn, resultRows, usersIn, writeRecords } from '../../harness/runs';
import { useWorkerSuite } from '../../harness/worker';
import type { ReviewMessage } from '../../src/cli/review-dlq';

const suite = useWorkerSuite();

const reindex = (...args: string[]) => runCli(args, suite.worker.cliEnv);

const face = (person: string, left: number) => ({
  person,
  box: [left, 0.2, 0.3, 0.4] as [number, number, number, number],
});

async function json<T>(...args: string[]): Promise<T> {
  const outcome = await reindex(...args);
  expect(outcome).toMatchObject({ code: 0, stderr: '' });
  return JSON.parse(lastLine(outcome.stdout)) as T;
}

async function reviewMessages(run: string): Promise<ReviewMessage[]> {
  return (await json<{ messages: ReviewMessage[] }>('dlq', 'list', '--run', run, '--json')).messages;
}

/** Every old FaceId the run's chunks still name. */
async function faceIdsInChunks(run: string): Promise<string[]> {
  const { resources } = suite;
  const objects = createRunObjects(resources.aws.s3, resources.config.bucket);
  const chunks = (await objects.list(run)).filter((object) => object.kind === 'chunk');
  const entries = (
    await Promise.all(chunks.map(async ({ Key }) => JSON.parse(await objects.readText(Key)) as ChunkEntry[]))
  ).flat();
  return entries.flatMap((entry) => entry.record.Faces.map((oldFace) => oldFace.FaceId)).sort();
}

test('forget takes one person, by user or by face, out of everything the tool wrote for the target, and leaves everyone else', async () => {
  const { resources } = suite;
  const ana = `ana-${randomUUID().slice(0, 8)}`;
  const ben = `ben-${randomUUID().slice(0, 8)}`;
  const { manifest, oldFaces } = await writeRecords(resources, [
    { faces: [face('ana', 0.1)], userId: ana },
    { faces: [face('ana', 0.5)], userId: ana, missing: true },
    { faces: [face('ben', 0.1)], userId: ben },
    { faces: [face('ben', 0.5)], userId: ben },
  ]);
  const [anaKept, anaMissing, benFirst, benSecond] = oldFaces.map((oldFace) => oldFace.FaceId);
  const target = resources.ownCollection(`forget-${randomUUID()}`);
  const summary = await json<RunSummary>(
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
  expect(summary).toMatchObject({ matched: 3, dlqByReason: { [ReasonCode.ImageNotFound]: 1 }, usersCreated: 2 });
  const rowsBefore = await resultRows(resources, summary.workflowId);
  const anaNewFace = rowsBefore.find((row) => row.OldFaceId === anaKept)?.FaceId ?? '';
  const facesBefore = await facesIn(resources, target);
  const ledger = createLedger(resources.aws.s3, resources.config.bucket);

  // A run into the target whose chunk was damaged: its report names the target.
  const damagedRun = `damaged-${randomUUID()}`;
  const damaged = chunkKey(damagedRun, 0);
  await resources.aws.s3.send(
    new PutObjectCommand({ Bucket: resources.config.bucket, Key: damaged, Body: 'not a chunk' }),
  );
  await resources.aws.s3.send(
    new PutObjectCommand({
      Bucket: resources.config.bucket,
      Key: reportKey(damagedRun, 'json'),
      Body: JSON.stringify({ targetCollectionId: target }),
    }),
  );

  expect(await faceIdsInChunks(summary.workflowId)).toEqual([anaKept, anaMissing, benFirst, benSecond].sort());

  const dry = await json<Forgotten>('forget', '--user', ana, '--target', target, '--dry-run', '--json');
  expect(dry).toMatchObject({
    targetFaces: [anaNewFace],
    targetUser: true,
    rows: 1,
    ledgerFaces: 1,
    runFiles: { faces: 2, objects: 1 },
    reviewMessages: 1,
    resultsDlqRows: 0,
  });
  expect(dry.runFiles.unreadable).toContain(damaged);
  expect(await facesIn(resources, target)).toEqual(facesBefore);
  expect(await reviewMessages(summary.workflowId)).toHaveLength(1);

  const forgotten = await json<Forgotten>('forget', '--user', ana, '--target', target, '--json');
  expect(forgotten).toMatchObject({ ...dry, dryRun: false });
  expect(await facesIn(resources, target)).toEqual(facesBefore.filter((faceId) => faceId !== anaNewFace));
  expect(await usersIn(resources, target)).toEqual([ben]);
  expect((await resultRows(resources, summary.workflowId)).map((row) => row.OldFaceId).sort()).toEqual(
    [benFirst, benSecond].sort(),
  );
  expect(await ledger.claim(target, anaNewFace)).toBeUndefined();
  expect(await faceIdsInChunks(summary.workflowId)).toEqual([benFirst, benSecond].sort());
  expect(await reviewMessages(summary.workflowId)).toEqual([]);
  // Nothing of them is left to find.
  expect(await json<Forgotten>('forget', '--user', ana, '--target', target, '--json')).toMatchObject({
    targetFaces: [],
    targetUser: false,
    rows: 0,
    ledgerFaces: 0,
    runFiles: { faces: 0 },
    reviewMessages: 0,
  });

  const benFirstNew = rowsBefore.find((row) => row.OldFaceId === benFirst)?.FaceId ?? '';
  const byFace = await json<Forgotten>('forget', '--face', benFirst ?? '', '--target', target, '--json');
  expect(byFace).toMatchObject({
    targetFaces: [benFirstNew],
    targetUser: false,
    rows: 1,
    ledgerFaces: 1,
    runFiles: { faces: 1, objects: 1 },
  });
  expect(await facesIn(resources, target, ben)).toEqual([
    rowsBefore.find((row) => row.OldFaceId === benSecond)?.FaceId,
  ]);
  expect((await resultRows(resources, summary.workflowId)).map((row) => row.OldFaceId)).toEqual([benSecond]);
  await createRunObjects(resources.aws.s3, resources.config.bucket).delete([damaged, reportKey(damagedRun, 'json')]);
}, 180_000);

test('forget names its person exactly once, or says so in one line with exit code 2', async () => {
  for (const args of [
    ['--target', 'faces'],
    ['--face', 'f', '--user', 'u', '--target', 'faces'],
  ]) {
    expect(await reindex('forget', ...args)).toEqual({
      code: 2,
      stdout: '',
      stderr: 'reindex: name the person with exactly one of --face <id> or --user <id>\n',
    });
  }
});

test("a run tags its working data as ended for the bucket's expiry and its rows with their time to live; purge removes the data, its key and its review messages, and keeps its rows", async () => {
  const { resources } = suite;
  const { manifest } = await writeRecords(resources, [
    { faces: [face('cy', 0.1)] },
    { faces: [face('cy', 0.5)], missing: true },
  ]);
  const target = resources.ownCollection(`purge-${randomUUID()}`);
  const summary = await json<RunSummary>(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--quality-filter',
    'NONE',
    '--rows-expire-days',
    '30',
    '--wait',
    '--json',
  );
  const run = summary.workflowId;
  // The table's time to live deletes each row 30 days after it was written.
  const [row] = await resultRows(resources, run);
  expect(row?.ExpiresAt).toBe(Math.floor(Date.parse(row?.MigratedAt ?? '') / 1000) + 30 * 24 * 60 * 60);
  const objects = createRunObjects(resources.aws.s3, resources.config.bucket);
  const written = await objects.list(run);
  expect(written.map((object) => object.kind).sort()).toEqual(['chunk', 'report', 'report']);
  for (const { Key } of written) {
    const { TagSet } = await resources.aws.s3.send(
      new GetObjectTaggingCommand({ Bucket: resources.config.bucket, Key }),
    );
    expect(TagSet).toEqual([RUN_ENDED_TAG]);
  }
  const ledger = createLedger(resources.aws.s3, resources.config.bucket);
  expect(await ledger.runKey(target, run)).toBeDefined();

  const kept = await json<Purged>('purge', run, '--json');
  expect(kept).toMatchObject({
    objects: { chunk: 1, 'redrive records': 0, report: 2 },
    runKey: true,
    resultsDlqRows: 0,
    reviewMessages: { removed: 0, kept: 1 },
  });
  expect(await objects.list(run)).toEqual([]);
  expect(await ledger.runKey(target, run)).toBeUndefined();
  expect(await reviewMessages(run)).toHaveLength(1);
  expect(await resultRows(resources, run)).toHaveLength(1);

  expect(await json<Purged>('purge', run, '--target', target, '--with-review', '--json')).toMatchObject({
    objects: { chunk: 0, report: 0 },
    runKey: false,
    reviewMessages: { removed: 1, kept: 0 },
  });
  expect(await reviewMessages(run)).toEqual([]);
  expect(await reindex('purge', run)).toEqual({
    code: 2,
    stdout: '',
    stderr: `reindex: nothing of run ${run} is left in ${resources.config.bucket} or the queues\n`,
  });
}, 180_000);

test('purge refuses a run that is still running: it reads what purge would remove', async () => {
  const { resources } = suite;
  // Its one image is missing, so its breaker pauses it: the run cannot end before the test cancels it.
  const { manifest } = await writeRecords(resources, [{ faces: [face('dee', 0.1)], missing: true }]);
  const target = resources.ownCollection(`purge-running-${randomUUID()}`);
  const started = await json<{ workflowId: string }>(
    'start',
    '--manifest',
    `s3://${manifest.Bucket}/${manifest.Key}`,
    '--target',
    target,
    '--pause-after-failures',
    '1',
    '--json',
  );

  expect(await reindex('purge', started.workflowId)).toEqual({
    code: 2,
    stdout: '',
    stderr: `reindex: run ${started.workflowId} is still running: it reads what purge would remove; cancel it or wait for its end\n`,
  });
  await reindex('cancel', started.workflowId);
}, 120_000);
