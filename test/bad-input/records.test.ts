/**
 * The corpus's broken and odd records, run for real: one run of a records file holding every
 * record case beside the good ones, and one run of each records file whose breakage is in the
 * file itself (a truncated array, a BOM, CRLFs), all on a worker, started with `reindex start` as
 * an operator starts them. Afterwards the operator's checks: every run completed, each bad record
 * is in the review DLQ with exactly its reason code and detail, each good one has its result rows,
 * and `reindex validate` had said the same beforehand.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { count } from '../../src/domain/format';
import type { ResultRow, ReviewItem } from '../../src/domain/outcomes';
import { ReasonCode } from '../../src/domain/reasons';
import type { RunSummary } from '../../src/shared';
import { lastLine, runCli } from '../../harness/cli';
import { createRunResources, facesIn, resultRows, type RunResources, takeReview } from '../../harness/runs';
import { type RunningWorker, startWorker } from '../../harness/worker';
import {
  type Case,
  CASES,
  casesWith,
  expand,
  type ExpectedReview,
  type Filling,
  inputOf,
  MADE_BY_THEIR_TEST,
  putImages,
  testPrefix,
} from './corpus';

/** Reasons IndexFaces gives for an image: every face of the record gets a DLQ message of its own. */
const IMAGE_REASONS = new Set<string>([
  ReasonCode.ImageNotFound,
  ReasonCode.AccessDenied,
  ReasonCode.InvalidImageFormat,
  ReasonCode.ImageTooLarge,
  ReasonCode.ImageEmpty,
]);

/** The record cases in the table's order: the file of all records starts with the control. */
const recordCases: Case[] = CASES.filter(({ outcome }) => 'migrated' in outcome || 'dlq' in outcome);
const fileCases = casesWith('run').filter((testCase) => !MADE_BY_THEIR_TEST.includes(testCase.input));

let resources: RunResources;
let worker: RunningWorker;
let filling: Filling;
const directory = mkdtempSync(path.join(tmpdir(), 'bad-input-'));

beforeAll(async () => {
  resources = await createRunResources();
  worker = await startWorker(resources);
  filling = { bucket: resources.config.bucket, prefix: testPrefix() };
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await resources?.release();
  rmSync(directory, { recursive: true, force: true });
});

async function upload(name: string, Body: Buffer): Promise<string> {
  const Key = `${filling.prefix}/records/${name}`;
  await resources.aws.s3.send(new PutObjectCommand({ Bucket: filling.bucket, Key, Body }));
  return `s3://${filling.bucket}/${Key}`;
}

/** `reindex start --wait --json` of a records file: the run's summary. */
async function run(uri: string): Promise<RunSummary> {
  const target = resources.ownCollection(`bad-input-${randomUUID()}`);
  const outcome = await runCli(
    ['start', '--manifest', uri, '--target', target, '--quality-filter', 'NONE', '--wait', '--json'],
    worker.cliEnv,
  );
  if (outcome.code !== 0) throw new Error(`reindex start of ${uri} ended with ${outcome.code}: ${outcome.stderr}`);
  return JSON.parse(lastLine(outcome.stdout)) as RunSummary;
}

/** A detail as the table states it: the expected text when the detail starts as the table says. */
function seenDetail(
  detail: string,
  expected: { detail?: string; detailStart?: string },
  values: Record<string, string | number>,
): string {
  if (expected.detailStart !== undefined && detail.startsWith(expand(expected.detailStart, values)))
    return `${expand(expected.detailStart, values)}…`;
  return detail;
}

const statedDetail = (expected: { detail?: string; detailStart?: string }, values: Record<string, string | number>) =>
  expected.detailStart !== undefined
    ? `${expand(expected.detailStart, values)}…`
    : expand(expected.detail ?? '', values);

const faceIdsOf = (text: Buffer): string[] =>
  [...text.toString('latin1').matchAll(/"FaceId":\s*"([^"]+)"/g)].map((match) => match[1] ?? '');

/**
 * Runs one records file of these record cases, one a line, after `reindex validate` of it, and
 * returns for each case what happened and what the table says should have.
 */
async function runRecordCases(
  cases: Case[],
  name: string,
): Promise<{ seen: Record<string, unknown>; stated: Record<string, unknown>; totals: Record<string, unknown> }> {
  const inputs = cases.map((testCase) => inputOf(testCase, filling));
  for (const [i, input] of inputs.entries()) {
    // The table's {{line}} is the record's line: each input is exactly one line.
    expect([cases[i]?.name, input.indexOf('\n')]).toEqual([cases[i]?.name, input.length - 1]);
    await putImages(resources.aws.s3, filling.bucket, input, cases[i]?.image);
  }
  const uri = await upload(name, Buffer.concat(inputs));
  const failures = path.join(directory, `${name}.failures.jsonl`);

  const validated = await runCli(['validate', uri, '--failures', failures, '--json'], worker.cliEnv);
  const summary = await run(uri);

  expect(validated).toMatchObject({ code: 1, stderr: '' });
  const rows = await resultRows(resources, summary.workflowId);
  const review = (await takeReview(resources)).filter((item) => item.runId === summary.workflowId);
  const validateReasons = new Map(
    readFileSync(failures, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { index: number; reason: string })
      .map((failure) => [failure.index, failure.reason]),
  );
  const seen: Record<string, { migratedFaces: number; review: string[]; messages: number; validate: string }> = {};
  const stated: typeof seen = {};
  for (const [index, testCase] of cases.entries()) {
    const input = inputs[index] ?? Buffer.alloc(0);
    const values = { ...filling, line: index + 1, bytes: count(input.length - 1) };
    const faceIds = faceIdsOf(input);
    const items = review.filter((item) => item.recordIndex === index);
    seen[testCase.name] = {
      migratedFaces: rows.filter((row) => faceIds.includes(row.OldFaceId)).length,
      review: [
        ...new Set(
          items.map(
            (item) =>
              `${item.reason}: ${seenDetail(item.detail, 'dlq' in testCase.outcome ? testCase.outcome : {}, values)}`,
          ),
        ),
      ],
      messages: items.length,
      validate: validateReasons.get(index) ?? 'valid',
    };
    const outcome = testCase.outcome;
    stated[testCase.name] =
      'dlq' in outcome
        ? {
            migratedFaces: 0,
            review: [`${outcome.dlq}: ${statedDetail(outcome, values)}`],
            messages: IMAGE_REASONS.has(outcome.dlq) ? faceIds.length : 1,
            validate: outcome.validate ?? outcome.dlq,
          }
        : { migratedFaces: faceIds.length, review: [], messages: 0, validate: 'valid' };
  }
  const sum = (figures: typeof seen, figure: 'migratedFaces' | 'messages') =>
    Object.values(figures).reduce((total, each) => total + each[figure], 0);
  const targetFaces = await facesIn(resources, summary.targetCollectionId);
  return {
    seen,
    stated,
    // Nothing else: every row and every DLQ message of the run belongs to a case, and the target holds the rows' faces.
    totals: {
      seen: {
        status: summary.status,
        rows: rows.length,
        review: review.length,
        dlq: summary.dlq,
        targetFaces,
        rowFaces: rows.map((row) => row.FaceId).sort(),
      },
      stated: {
        status: 'completed',
        rows: sum(stated, 'migratedFaces'),
        review: sum(stated, 'messages'),
        dlq: sum(stated, 'messages'),
        targetFaces,
        rowFaces: targetFaces,
      },
    },
  };
}

test(`one run of the ${recordCases.length} record cases: each bad record gets exactly its reason, each good one its rows, and validate agreed`, async () => {
  const { seen, stated, totals } = await runRecordCases(recordCases, 'all-records.jsonl');

  expect(seen).toEqual(stated);
  expect(totals.seen).toEqual(totals.stated);
}, 240_000);

test(`a run of each of the ${fileCases.length} records files broken as a whole keeps every record it can read, and says where the file breaks`, async () => {
  const runs = await Promise.all(
    fileCases.map(async (testCase, i) => {
      const input = inputOf(testCase, filling);
      await putImages(resources.aws.s3, filling.bucket, input);
      return run(await upload(`${i}-${path.basename(testCase.input)}`, input));
    }),
  );
  const review = await takeReview(resources);

  const seen: Record<string, unknown> = {};
  const stated: Record<string, unknown> = {};
  for (const [i, testCase] of fileCases.entries()) {
    const summary = runs[i];
    const rows: ResultRow[] = summary ? await resultRows(resources, summary.workflowId) : [];
    const items: ReviewItem[] = review.filter((item) => item.runId === summary?.workflowId);
    const expected = testCase.outcome.run;
    const reviewed = (item: ReviewItem, wanted?: ExpectedReview) => ({
      index: item.recordIndex,
      reason: item.reason,
      detail: seenDetail(item.detail, wanted ?? {}, { ...filling }),
    });
    seen[testCase.name] = {
      status: summary?.status,
      migrated: rows.map((row) => row.Key).sort(),
      dlq: items
        .map((item) =>
          reviewed(
            item,
            expected.dlq.find((wanted) => wanted.index === item.recordIndex),
          ),
        )
        .sort((a, b) => (a.index ?? 0) - (b.index ?? 0)),
    };
    stated[testCase.name] = {
      status: 'completed',
      migrated: expected.migrated.map((key) => `${filling.prefix}/${key}`).sort(),
      dlq: expected.dlq.map((wanted) => ({
        index: wanted.index,
        reason: wanted.reason,
        detail: statedDetail(wanted, { ...filling }),
      })),
    };
  }
  expect(seen).toEqual(stated);
}, 240_000);
