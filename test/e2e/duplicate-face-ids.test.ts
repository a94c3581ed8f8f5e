/**
 * End to end on the local stack: a records file in which two records name the same old FaceId. The
 * run migrates the old face once; the later row becomes a DUPLICATE_FACE_ID message in the review
 * DLQ, its new face leaves the target, and no user takes it. Checked as an operator would: the
 * summary, the rows, the DLQ, the target and its users.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { ReasonCode } from '../../src/domain/reasons';
import type { ImageRecord } from '../../src/domain/records';
import type { ReindexCollectionInput, RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import {
  createRunResources,
  facesIn,
  resultRows,
  type RunResources,
  takeReview,
  writeRecords,
} from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

let resources: RunResources;
let worker: RunningWorker;

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await resources?.release();
});

const face = (person: string): DeclaredFace => ({ person, box: [0.25, 0.2, 0.4, 0.45] });

async function readRecordsFile({ Bucket, Key }: ReindexCollectionInput['manifest']): Promise<ImageRecord[]> {
  const { Body } = await resources.aws.s3.send(new GetObjectCommand({ Bucket, Key }));
  return ((await Body?.transformToString()) ?? '').split('\n').map((line) => JSON.parse(line) as ImageRecord);
}

async function writeRecordsFile(manifest: ReindexCollectionInput['manifest'], records: ImageRecord[]): Promise<void> {
  await resources.aws.s3.send(
    new PutObjectCommand({ ...manifest, Body: records.map((record) => JSON.stringify(record)).join('\n') }),
  );
}

function firstFace(record: ImageRecord | undefined) {
  const found = record?.Faces[0];
  if (!found) throw new Error('the test wrote a record without a face');
  return found;
}

async function runToEnd(
  manifest: ReindexCollectionInput['manifest'],
  target: string,
  ...options: string[]
): Promise<RunSummary> {
  const outcome = await runCli(
    [
      'start',
      '--manifest',
      `s3://${manifest.Bucket}/${manifest.Key}`,
      '--target',
      target,
      '--quality-filter',
      'NONE',
      ...options,
      '--wait',
      '--json',
    ],
    worker.cliEnv,
  );
  expect(outcome.stderr).toBe('');
  return JSON.parse(lastLine(outcome.stdout)) as RunSummary;
}

test('a second record naming a migrated old face: its row refused after its batch, its face deleted, one DLQ message, no user association', async () => {
  const { manifest } = await writeRecords(resources, [
    { faces: [face('ana')], userId: 'user-ana' },
    { faces: [face('ana-elsewhere')], userId: 'user-ana' },
    { faces: [face('bo')] },
  ]);
  const [holder, second, other] = await readRecordsFile(manifest);
  const shared = firstFace(holder).FaceId;
  firstFace(second).FaceId = shared;
  await writeRecordsFile(
    manifest,
    [holder, second, other].flatMap((record) => (record ? [record] : [])),
  );
  const target = resources.ownCollection(`e2e-duplicates-${randomUUID()}`);

  // One record a batch, one batch at a time: the first record's row is in the table before the second's comes.
  const summary = await runToEnd(manifest, target, '--batch-size', '1', '--batches-in-flight', '1');

  expect(summary).toMatchObject({
    status: 'completed',
    images: 3,
    faces: 3,
    matched: 2,
    resultsWritten: 2,
    dlq: 1,
    usersCreated: 1,
    facesAssociated: 1,
  });
  expect(summary.dlqByReason).toEqual({ [ReasonCode.DuplicateFaceId]: 1 });
  const rows = await resultRows(resources, summary.workflowId);
  expect(rows).toHaveLength(summary.matched);
  expect(rows.filter((row) => row.OldFaceId === shared).map((row) => row.Key)).toEqual([holder?.Key]);
  const review = await takeReview(resources);
  expect(review.map((item) => [item.reason, item.Key, item.face?.FaceId])).toEqual([
    [ReasonCode.DuplicateFaceId, second?.Key, shared],
  ]);
  expect(review[0]?.detail).toContain(`by the record of s3://${manifest.Bucket}/${holder?.Key}`);
  // Every old face the file names, as often as it names it, is a row or a DLQ message.
  const accounted = [...rows.map((row) => row.OldFaceId), ...review.map((item) => item.face?.FaceId)];
  expect(accounted.sort()).toEqual([shared, shared, firstFace(other).FaceId].sort());
  const kept = rows.map((row) => row.FaceId).sort();
  expect(await facesIn(resources, target)).toEqual(kept);
  expect(await facesIn(resources, target, 'user-ana')).toEqual(
    rows.filter((row) => row.OldFaceId === shared).map((row) => row.FaceId),
  );
}, 120_000);

test('two records of one batch and a repeated line naming one old face: one row, two DLQ messages, the kept face stays', async () => {
  const { manifest } = await writeRecords(resources, [
    { faces: [face('cy')] },
    { faces: [face('cy-elsewhere')] },
    { faces: [face('dee')] },
  ]);
  const [first, second, other] = await readRecordsFile(manifest);
  const shared = firstFace(first).FaceId;
  firstFace(second).FaceId = shared;
  // The repeated line is the same image and faces: its run reuses the first line's indexing, and so its new face.
  const records = [first, second, other, first].flatMap((record) => (record ? [record] : []));
  await writeRecordsFile(manifest, records);
  const target = resources.ownCollection(`e2e-duplicates-${randomUUID()}`);

  // The first three records in one batch, so their rows come in one receive; the repeated line after them.
  const summary = await runToEnd(manifest, target, '--batch-size', '3', '--batches-in-flight', '1');

  expect(summary).toMatchObject({ status: 'completed', images: 4, faces: 4, matched: 2, resultsWritten: 2, dlq: 2 });
  expect(summary.dlqByReason).toEqual({ [ReasonCode.DuplicateFaceId]: 2 });
  const rows = await resultRows(resources, summary.workflowId);
  expect(rows).toHaveLength(summary.matched);
  expect(rows.filter((row) => row.OldFaceId === shared)).toHaveLength(1);
  const review = await takeReview(resources);
  expect(review.map((item) => [item.reason, item.face?.FaceId])).toEqual([
    [ReasonCode.DuplicateFaceId, shared],
    [ReasonCode.DuplicateFaceId, shared],
  ]);
  const accounted = [...rows.map((row) => row.OldFaceId), ...review.map((item) => item.face?.FaceId)];
  expect(accounted.sort()).toEqual(records.map((record) => firstFace(record).FaceId).sort());
  expect(await facesIn(resources, target)).toEqual(rows.map((row) => row.FaceId).sort());
}, 120_000);
