/**
 * The intake queue's messages: S3 event notifications of records files (directly, or wrapped by SNS),
 * turned into the files that should start runs. Pure: no I/O.
 */
import { createHash } from 'node:crypto';

/**
 * What prepare and validate write beside a records file by default. They land under the same prefix
 * and are no records files, so they start no run.
 */
export const SIDE_FILE_SUFFIXES = { unplaced: '.unplaced.jsonl', failures: '.failures.jsonl' } as const;

export interface UploadedFile {
  Bucket: string;
  Key: string;
  /** Tells one upload of a key from a later one, even of the same bytes: a new upload is a new run. */
  version: string;
}

export type IntakeMessage =
  | { files: UploadedFile[]; ignored: number }
  /** S3's test event when notifications are configured: nothing to do. */
  | { test: true }
  | { malformed: string };

interface S3EventRecord {
  eventSource?: string;
  eventName?: string;
  s3?: { bucket?: { name?: string }; object?: { key?: string; eTag?: string; versionId?: string; sequencer?: string } };
}

/** S3 writes object keys URL-encoded, with spaces as '+'; undefined when the key is no such encoding. */
function decodeKey(key: string): string | undefined {
  try {
    return decodeURIComponent(key.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

export function parseIntakeMessage(body: string, prefix: string): IntakeMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { malformed: 'the body is not JSON' };
  }
  const wrapped = parsed as { Type?: unknown; Message?: unknown; Event?: unknown; Records?: unknown };
  if (wrapped.Type === 'Notification' && typeof wrapped.Message === 'string')
    return parseIntakeMessage(wrapped.Message, prefix);
  if (wrapped.Event === 's3:TestEvent') return { test: true };
  if (!Array.isArray(wrapped.Records)) return { malformed: 'the body is no S3 event notification (no Records)' };
  const files: UploadedFile[] = [];
  let ignored = 0;
  for (const record of wrapped.Records as S3EventRecord[]) {
    const Bucket = record.s3?.bucket?.name;
    const rawKey = record.s3?.object?.key;
    if (record.eventSource !== 'aws:s3' || !record.eventName?.startsWith('ObjectCreated:') || !Bucket || !rawKey) {
      ignored += 1;
      continue;
    }
    const Key = decodeKey(rawKey);
    if (Key === undefined)
      return { malformed: `the object key ${JSON.stringify(rawKey)} is not URL-encoded as S3 writes keys` };
    if (
      !Key.startsWith(prefix) ||
      Key.endsWith('/') ||
      Object.values(SIDE_FILE_SUFFIXES).some((suffix) => Key.endsWith(suffix))
    ) {
      ignored += 1;
      continue;
    }
    const object = record.s3?.object;
    // The sequencer is new for every upload, even of the same bytes, and the same on a redelivery.
    files.push({ Bucket, Key, version: object?.versionId ?? object?.sequencer ?? object?.eTag ?? '' });
  }
  return { files, ignored };
}

/**
 * The run id of an uploaded file: the same upload delivered twice (S3 notifies at least once) gets
 * the same id, which Temporal refuses to start again.
 */
export function intakeRunId(file: UploadedFile): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([file.Bucket, file.Key, file.version]))
    .digest('hex')
    .slice(0, 16);
  const name = (file.Key.split('/').pop() ?? 'records').replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  return `intake-${name}-${digest}`;
}
