/**
 * `reindex dlq list|show|redrive` after a real run on the local stack: the operator reads the
 * failures by run and reason without consuming them, fixes an image and a box, and redrives; a
 * message leaves the DLQ only once a new run holds its face.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import type { ReviewMessage } from '../../src/cli/review-dlq';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { createRunResources, facesIn, resultRows, type RunResources, writeRecords } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';

/** The files the commands write, removed at the end: they hold rows of faces. */
const directory = mkdtempSync(path.join(tmpdir(), 'dlq-test-'));
let resources: RunResources;
let worker: RunningWorker;

const reindex = (...args: string[]) => runCli(args, worker.cliEnv);

interface Listing {
  total: number;
  byReason: Record<string, number>;
  messages: ReviewMessage[];
}

async function list(...args: string[]): Promise<Listing> {
  const outcome = await reindex('dlq', 'list', '--json', ...args);
  expect(outcome.stderr).toBe('');
  return JSON.parse(lastLine(outcome.stdout)) as Listing;
}

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
}, 120_000);

afterAll(async () => {
  rmSync(directory, { recursive: true, force: true });
  await worker?.stop();
  await resources?.release();
});

test('list and show leave the DLQ as it was; redrive takes fixed images and boxes into a new run and only then removes them', async () => {
  const face = { person: 'ana', box: [0.1, 0.1, 0.3, 0.3] as [number, number, number, number] };
  const elsewhere = { person: 'ana', box: [0.6, 0.6, 0.3, 0.3] as [number, number, number, number] };
  const { manifest } = await writeRecords(resources, [
    { faces: [face] },
    { faces: [face], missing: true },
    { faces: [face], oldFaces: [elsewhere] },
    { faces: [], oldFaces: [face] },
  ]);
  const target = resources.ownCollection(`dlq-${randomUUID()}`);
  const started = await reindex(
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
  expect(started.code).toBe(0);
  const run = (JSON.parse(lastLine(started.stdout)) as RunSummary).workflowId;

  const expected = { [ReasonCode.ImageNotFound]: 1, [ReasonCode.IouBelowThreshold]: 1, [ReasonCode.NoFaceDetected]: 1 };
  const first = await list('--run', run);
  expect(first).toMatchObject({ total: 3, byReason: expected });
  // Reading is not consuming: a second look sees the same messages.
  const second = await list('--run', run);
  expect(second.messages.map((message) => message.messageId).sort()).toEqual(
    first.messages.map((message) => message.messageId).sort(),
  );
  expect((await list('--run', 'some-other-run')).total).toBe(0);

  const text = await reindex('dlq', 'list', '--run', run, '--reason', ReasonCode.ImageNotFound);
  expect(text.stdout).toContain(`1 messages in the review DLQ of run ${run} with reason IMAGE_NOT_FOUND`);
  const notFound = first.messages.find((message) => message.item.reason === ReasonCode.ImageNotFound);
  const misplaced = first.messages.find((message) => message.item.reason === ReasonCode.IouBelowThreshold);
  if (!notFound?.item.Key || !misplaced?.item.face) throw new Error('the run sent the wrong messages');
  expect(text.stdout).toContain(`s3://${notFound.item.Bucket}/${notFound.item.Key}`);

  const shown = await reindex('dlq', 'show', notFound.messageId);
  expect(shown.code).toBe(0);
  expect(JSON.parse(shown.stdout)).toMatchObject({
    messageId: notFound.messageId,
    item: { reason: ReasonCode.ImageNotFound, runId: run, Key: notFound.item.Key },
  });

  // The operator uploads the missing image and redrives it: a new run migrates the face.
  await resources.aws.s3.send(
    new PutObjectCommand({ Bucket: notFound.item.Bucket, Key: notFound.item.Key, Body: syntheticPng([face]) }),
  );
  const redriven = await reindex(
    'dlq',
    'redrive',
    '--run',
    run,
    '--reason',
    ReasonCode.ImageNotFound,
    '--quality-filter',
    'NONE',
    '--wait',
    '--json',
  );
  expect(redriven.stderr).toBe('');
  expect(redriven.code).toBe(0);
  const redriveSummary = JSON.parse(lastLine(redriven.stdout)) as RunSummary;
  expect(redriveSummary).toMatchObject({
    status: 'completed',
    images: 1,
    faces: 1,
    matched: 1,
    dlq: 0,
    targetCollectionId: target,
  });
  expect((await resultRows(resources, redriveSummary.workflowId)).map((row) => row.OldFaceId)).toEqual([
    notFound.item.face?.FaceId,
  ]);
  expect(await list('--run', run)).toMatchObject({
    total: 2,
    byReason: { [ReasonCode.IouBelowThreshold]: 1, [ReasonCode.NoFaceDetected]: 1 },
  });

  // A box fixed in a copy of the records: the dry run writes them, the operator corrects the box.
  const out = path.join(directory, `redrive-${randomUUID()}.jsonl`);
  const dry = await reindex(
    'dlq',
    'redrive',
    '--run',
    run,
    '--reason',
    ReasonCode.IouBelowThreshold,
    '--dry-run',
    '--out',
    out,
  );
  expect(dry.stdout).toContain('would redrive 1 of 1 messages as 1 records');
  const [record] = (await readFile(out, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { Faces: { FaceId: string; BoundingBoxes: object }[] });
  expect(record?.Faces.map((oldFace) => oldFace.FaceId)).toEqual([misplaced.item.face.FaceId]);
  if (!record?.Faces[0]) throw new Error('the dry run wrote no face');
  record.Faces[0].BoundingBoxes = { Left: face.box[0], Top: face.box[1], Width: face.box[2], Height: face.box[3] };
  await writeFile(out, `${JSON.stringify(record)}\n`);
  expect(await list('--run', run)).toMatchObject({ total: 2 });

  const fixed = await reindex(
    'dlq',
    'redrive',
    '--run',
    run,
    '--reason',
    ReasonCode.IouBelowThreshold,
    '--records',
    out,
    '--quality-filter',
    'NONE',
    '--wait',
    '--json',
  );
  expect(fixed.code).toBe(0);
  const fixedSummary = JSON.parse(lastLine(fixed.stdout)) as RunSummary;
  expect(fixedSummary).toMatchObject({ status: 'completed', matched: 1, dlq: 0 });
  const [fixedRow] = await resultRows(resources, fixedSummary.workflowId);
  expect(fixedRow?.OldFaceId).toBe(misplaced.item.face.FaceId);
  expect(await list('--run', run)).toMatchObject({ total: 1, byReason: { [ReasonCode.NoFaceDetected]: 1 } });

  // The target holds the first run's face and the two redriven ones, each once.
  const rows = [
    ...(await resultRows(resources, run)),
    ...(await resultRows(resources, redriveSummary.workflowId)),
    fixedRow,
  ];
  expect((await facesIn(resources, target)).sort()).toEqual(rows.map((row) => row?.FaceId).sort());

  // Nothing matches any more: nothing starts, nothing is removed.
  const again = await reindex('dlq', 'redrive', '--run', run, '--reason', ReasonCode.ImageNotFound);
  expect(again.code).toBe(2);
  expect(again.stderr).toBe(`reindex: no message in the review DLQ of run ${run} with reason IMAGE_NOT_FOUND\n`);
}, 240_000);

test("a redrive whose fixed records leave out a face keeps that face's message", async () => {
  const face = { person: 'bo', box: [0.1, 0.1, 0.3, 0.3] as [number, number, number, number] };
  const { manifest } = await writeRecords(resources, [
    { faces: [face], missing: true },
    { faces: [face], missing: true },
  ]);
  const target = resources.ownCollection(`dlq-${randomUUID()}`);
  const started = await reindex(
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
  const run = (JSON.parse(lastLine(started.stdout)) as RunSummary).workflowId;
  const [kept, taken] = (await list('--run', run)).messages;
  if (!kept?.item.Key || !taken?.item.Key) throw new Error('the run sent the wrong messages');
  await resources.aws.s3.send(
    new PutObjectCommand({ Bucket: taken.item.Bucket, Key: taken.item.Key, Body: syntheticPng([face]) }),
  );
  const out = path.join(directory, `redrive-${randomUUID()}.jsonl`);
  await writeFile(
    out,
    `${JSON.stringify({ Bucket: taken.item.Bucket, Key: taken.item.Key, ExternalImageId: taken.item.ExternalImageId, Faces: [taken.item.face] })}\n`,
  );

  const redriven = await reindex(
    'dlq',
    'redrive',
    '--run',
    run,
    '--records',
    out,
    '--quality-filter',
    'NONE',
    '--wait',
  );
  expect(redriven.code).toBe(0);
  expect(redriven.stdout).toContain('redrove 1 messages as 1 records');
  expect(redriven.stdout).toContain('left in the review DLQ: 1');
  expect((await list('--run', run)).messages.map((message) => message.messageId)).toEqual([kept.messageId]);

  // The taken message shows again, as when its delete did not take: its face has a row now, so it is only removed.
  const send = (body: unknown) =>
    resources.aws.sqs.send(
      new SendMessageCommand({ QueueUrl: resources.config.reviewDlqUrl, MessageBody: JSON.stringify(body) }),
    );
  await send(taken.item);
  const again = (await list('--run', run)).messages.find((message) => message.messageId !== kept.messageId);
  if (!again) throw new Error('the copy did not arrive');
  const removed = await reindex('dlq', 'redrive', '--message-id', again.messageId);
  expect(removed).toMatchObject({
    code: 0,
    stdout: 'removed 1 messages whose faces were migrated already; nothing to redrive\n',
  });
  expect((await list('--run', run)).messages.map((message) => message.messageId)).toEqual([kept.messageId]);

  // Messages of two runs go to two targets: a redrive takes one run at a time.
  await send({ ...kept.item, runId: 'another-run' });
  const mixed = await reindex('dlq', 'redrive', '--reason', ReasonCode.ImageNotFound);
  expect(mixed).toMatchObject({
    code: 2,
    stderr:
      'reindex: the chosen messages come from 2 runs, each with its own target: choose one with --run, or name the target with --target\n',
  });
}, 120_000);

test('bad input is one line and exit code 2, and the DLQ is left alone', async () => {
  const cases: [string[], string][] = [
    [['dlq', 'redrive'], 'reindex: choose the messages with --run, --reason or --message-id\n'],
    [['dlq', 'show', 'no-such-message'], 'reindex: no message of the review DLQ has the id no-such-message\n'],
    [
      ['dlq', 'list', '--reason', 'BOGUS'],
      "reindex: error: option '--reason <code...>' argument 'BOGUS' is invalid. Allowed choices are",
    ],
    [['dlq', 'redrive', '--run', 'x', '--out', 'f.jsonl'], 'reindex: --out goes with --dry-run\n'],
    [
      ['dlq', 'redrive', '--run', 'x', '--records', '/nonexistent/fixed.jsonl'],
      'reindex: no message in the review DLQ of run x\n',
    ],
  ];
  for (const [args, stderr] of cases) {
    const outcome = await reindex(...args);
    expect({ args, code: outcome.code }).toEqual({ args, code: 2 });
    expect(outcome.stderr.startsWith(stderr)).toBe(true);
    expect(outcome.stderr.trim().split('\n')).toHaveLength(1);
  }
}, 60_000);

test('a key or detail holding control characters is listed and shown with them escaped, never sent to the terminal', async () => {
  const run = `escapes-${randomUUID()}`;
  const item = {
    reason: ReasonCode.AccessDenied,
    // Clears the screen, then writes right to left: what a crafted key could do to a terminal.
    detail: 'IndexFaces refused \u009b2J the image',
    runId: run,
    Bucket: 'photos',
    Key: 'people/\u001b[2Jana\u202egpj.exe',
    ExternalImageId: undefined,
    face: { FaceId: randomUUID(), BoundingBoxes: { Left: 0.1, Top: 0.1, Width: 0.2, Height: 0.2 } },
  };
  await resources.aws.sqs.send(
    new SendMessageCommand({ QueueUrl: resources.config.reviewDlqUrl, MessageBody: JSON.stringify(item) }),
  );

  const listed = await reindex('dlq', 'list', '--run', run);
  const messageId = (await list('--run', run)).messages[0]?.messageId ?? '';
  const shown = await reindex('dlq', 'show', messageId);

  for (const output of [listed.stdout, shown.stdout]) {
    for (const raw of ['\u001b', '\u009b', '\u202e']) expect(output).not.toContain(raw);
    expect(output).toContain('\\u001b[2Jana\\u202egpj.exe');
  }
  expect(listed.stdout).toContain('refused \\u009b2J the image');
  expect(JSON.parse(shown.stdout)).toMatchObject({ messageId, item: { Key: item.Key, detail: item.detail } });
}, 60_000);
