/**
 * `reindex validate`: a records file checked before a run spends quota on it. Every record against
 * the schema a run applies (records.ts), and every image in S3: there, readable, not empty, at
 * most 15 MB, and JPEG or PNG by its first bytes. The file is streamed and the images are checked
 * a bounded number at a time, so memory stays flat at any size; each failure is one line of the
 * failures file. A file that is no records file as a whole (empty, not JSON, UTF-16, compressed)
 * is bad input, as it is to `reindex start`: one line, exit code 2.
 *
 * An image named by several records (the same photo indexed twice has two ImageIds) is checked
 * once: the verdicts on the last 10,000 images are kept, so memory stays bounded.
 *
 * Format is told by a ranged GET of the first 8 bytes, not by Content-Type or the key's extension:
 * S3 keeps whatever Content-Type the uploader sent (often none or binary/octet-stream), and
 * IndexFaces itself reads the bytes. It costs a second request per image.
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Command } from 'commander';
import { httpStatusOf } from '../aws/clients';
import { checkedRecords, type FileOutcome } from '../records/pipeline';
import { readRecords } from '../records/reader';
import { SIDE_FILE_SUFFIXES } from '../domain/intake';
import {
  dimensionsVerdict,
  formatVerdict,
  type ImageVerdict,
  reachesPastEdge,
  sizeVerdict,
} from '../domain/image-checks';
import { addReasonCounts, ReasonCode, type ReasonCounts } from '../domain/reasons';
import { forEachConcurrently, numberIn, progressBar, UsageError, withAws } from './common';
import { openInput, openLineSink } from './files';

export interface ValidateInput {
  /** A local path or an S3 URI, for the records file and for the failures file. */
  records: string;
  failures: string;
  concurrency: number;
}

export interface ValidateSummary {
  records: number;
  /** Images looked at in S3: one per distinct image, however many records name it. */
  imagesChecked: number;
  valid: number;
  invalid: number;
  invalidByReason: ReasonCounts;
  /** Faces whose box reaches past the image's edge: allowed, as Rekognition reports faces cut by it. */
  facesPastEdge: number;
  failures: string;
}

/** One line of the failures file. */
export interface ValidationFailure {
  index: number;
  Bucket: string | undefined;
  Key: string | undefined;
  reason: ReasonCode;
  detail: string;
}

export const DEFAULT_CONCURRENCY = 16;
const REMEMBERED_VERDICTS = 10_000;
/**
 * Bytes read from the start of each image: its format, and its size in pixels where the head holds
 * it (a PNG's always does; a JPEG's frame header may follow more metadata than this, and is then
 * left to the run).
 */
const HEAD_BYTES = 4096;

function imageFailure(error: unknown, uri: string): ImageVerdict | undefined {
  const status = httpStatusOf(error);
  if (status === 404) return { ok: false, reason: ReasonCode.ImageNotFound, detail: `${uri} does not exist` };
  if (status === 403)
    return { ok: false, reason: ReasonCode.AccessDenied, detail: `${uri} may not be read with these credentials` };
  return undefined;
}

async function checkImage(s3: S3Client, Bucket: string, Key: string): Promise<ImageVerdict> {
  const uri = `s3://${Bucket}/${Key}`;
  try {
    const { ContentLength = 0 } = await s3.send(new HeadObjectCommand({ Bucket, Key }));
    const size = sizeVerdict(ContentLength);
    if (!size.ok) return size;
    const { Body } = await s3.send(new GetObjectCommand({ Bucket, Key, Range: `bytes=0-${HEAD_BYTES - 1}` }));
    const head = (await Body?.transformToByteArray()) ?? new Uint8Array();
    const format = formatVerdict(head);
    return format.ok ? dimensionsVerdict(head) : format;
  } catch (error) {
    const verdict = imageFailure(error, uri);
    if (verdict) return verdict;
    throw error;
  }
}

export async function validateRecords(s3: S3Client, input: ValidateInput): Promise<ValidateSummary> {
  const body = await openInput(s3, input.records, 'the records file');
  const failures = await openLineSink(s3, input.failures, 'the failures file').catch((error: unknown) => {
    body.destroy();
    throw error;
  });
  const summary: ValidateSummary = {
    records: 0,
    imagesChecked: 0,
    valid: 0,
    invalid: 0,
    invalidByReason: {},
    facesPastEdge: 0,
    failures: input.failures,
  };
  const fail = async (failure: ValidationFailure) => {
    summary.invalid += 1;
    addReasonCounts(summary.invalidByReason, failure.reason);
    await failures.write(JSON.stringify(failure));
  };
  const named = (value: unknown, member: 'Bucket' | 'Key') => {
    const text = (value as Record<string, unknown> | null | undefined)?.[member];
    return typeof text === 'string' ? text : undefined;
  };

  // Least recently named first: a Map keeps insertion order, and a hit moves its image to the end.
  const verdicts = new Map<string, Promise<ImageVerdict>>();
  const verdictOn = (Bucket: string, Key: string): Promise<ImageVerdict> => {
    const image = `${Bucket}/${Key}`;
    const known = verdicts.get(image);
    verdicts.delete(image);
    const verdict = known ?? checkImage(s3, Bucket, Key);
    if (!known) summary.imagesChecked += 1;
    verdicts.set(image, verdict);
    if (verdicts.size > REMEMBERED_VERDICTS) verdicts.delete(verdicts.keys().next().value ?? '');
    return verdict;
  };

  async function* records(): AsyncGenerator<FileOutcome> {
    for await (const outcome of checkedRecords(readRecords(body))) {
      if (outcome.kind === 'malformed' && outcome.fileProblem !== undefined)
        throw new UsageError(`the records file ${input.records} ${outcome.fileProblem}`);
      yield outcome;
    }
  }

  const progress = progressBar('validating', 0, 'validating {value} records | {rate}/s');
  // Records are taken in file order, each when a slot is free: a record's own checks are at once,
  // its image's check is what waits. A fatal entry is the reader's last.
  const validate = async (outcome: FileOutcome) => {
    summary.records += 1;
    progress.advance();
    const { index } = outcome;
    if (outcome.kind === 'malformed') {
      await fail({ index, Bucket: undefined, Key: undefined, reason: outcome.reason, detail: outcome.detail });
      return;
    }
    if (outcome.kind === 'invalid') {
      const [Bucket, Key] = [named(outcome.value, 'Bucket'), named(outcome.value, 'Key')];
      await fail({ index, Bucket, Key, reason: outcome.reason, detail: outcome.detail });
      return;
    }
    const { Bucket, Key, Faces } = outcome.record;
    summary.facesPastEdge += Faces.filter((face) => reachesPastEdge(face.BoundingBoxes)).length;
    const verdict = await verdictOn(Bucket, Key);
    if (verdict.ok) summary.valid += 1;
    else await fail({ index, Bucket, Key, reason: verdict.reason, detail: verdict.detail });
  };
  try {
    // An image check that failed for good (S3 out of reach after the SDK's retries) ends the command.
    await forEachConcurrently(records(), input.concurrency, validate);
    await failures.close();
    return summary;
  } catch (error) {
    await failures.discard();
    throw error;
  } finally {
    progress.stop();
    body.destroy();
  }
}

function printSummary(records: string, summary: ValidateSummary): void {
  const reasons = Object.entries(summary.invalidByReason).map(([reason, count]) => `${reason} ${count}`);
  console.log(`records file   ${records}`);
  console.log(`records        ${summary.records}`);
  console.log(`images checked ${summary.imagesChecked}`);
  console.log(`valid          ${summary.valid}`);
  console.log(`invalid        ${summary.invalid}${reasons.length > 0 ? ` (${reasons.join(', ')})` : ''}`);
  console.log(`failures file  ${summary.failures}`);
  if (summary.facesPastEdge > 0)
    console.log(
      `note: ${summary.facesPastEdge} faces have a box reaching past the image's edge (allowed: Rekognition reports faces cut by the edge so)`,
    );
}

export function registerValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check a records file before a run: every record against the schema, every image in S3')
    .argument('<records>', 'the records file: s3://bucket/key or a local path')
    .option('--failures <location>', 'where the failures go, one JSON line each (default: <records>.failures.jsonl)')
    .option('--concurrency <n>', 'images checked at once', numberIn('--concurrency', 1, 512, true), DEFAULT_CONCURRENCY)
    .option('--json', 'print the summary as JSON')
    .action(async (records: string, options: { failures?: string; concurrency: number; json?: boolean }) => {
      await withAws(async ({ aws }) => {
        const summary = await validateRecords(aws.s3, {
          records,
          failures: options.failures ?? `${records}${SIDE_FILE_SUFFIXES.failures}`,
          concurrency: options.concurrency,
        });
        if (options.json) console.log(JSON.stringify({ recordsFile: records, ...summary }));
        else printSummary(records, summary);
        process.exitCode = summary.invalid > 0 ? 1 : 0;
      });
    });
}
