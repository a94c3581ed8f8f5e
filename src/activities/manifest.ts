/**
 * S3: the records file, the chunks it is split into, and the run's report. splitManifest streams the file, checks
 * every record, writes the valid ones as numbered chunk objects for the batch workflows, and sends
 * each refused record to the review DLQ with its reason. It heartbeats a cursor after every chunk,
 * so a retried attempt resumes after the last chunk written instead of starting over, and keeps
 * heartbeating that cursor while it reads a long stretch that holds no record (a huge one, skipped).
 */
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { activityInfo, cancellationDetails, heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { pipeline, Readable, Transform } from 'node:stream';
import type { Config } from '../domain/config';
import { csvText } from '../domain/csv';
import { checkedAgainstSource, type SourceFaces } from '../domain/erasures';
import { batchFailedReview, type ReviewItem } from '../domain/outcomes';
import { ReasonCode, type ReasonCounts } from '../domain/reasons';
import { faceIdsNamed, type ImageRecord, type RecordsSelection } from '../domain/records';
import { chunkKey, reportKey, type RunSummary } from '../shared';
import { httpStatusOf } from '../aws/clients';
import { createLedger, type Decision } from '../stores/ledger';
import { createReviewSender } from './queues';
import { whileAlive } from './liveness';
import type { SourceCollection } from './rekognition';
import { checkedRecords } from '../records/pipeline';
import { type ReadCursor, readRecords, type RecordEntry } from '../records/reader';

export interface SplitManifestInput {
  runId: string;
  manifest: { Bucket: string; Key: string };
  chunkSize: number;
  /** The records file's ETag when the run started: the split reads that version or fails. */
  manifestETag?: string;
  /** When runs of many collections share the records file: which of its records are this run's. */
  selection?: RecordsSelection;
}

/** What a run's chunks hold: each valid record with its position in the records file. */
export interface ChunkEntry {
  index: number;
  record: ImageRecord;
  /**
   * Whether the ledger held an indexing of the record when its batch loaded the chunk; absent when
   * the batch did not ask (histories from before the lookup), and then reindexImage looks itself.
   */
  indexedBefore?: boolean;
  /** The record's old faces the source collection no longer holds, when it was checked: its image is not indexed. */
  oldFacesGone?: string[];
}

/** The ledger a batch's records are looked up in: its target and the run's settings. */
export interface LedgerLookup {
  runId: string;
  targetCollectionId: string;
  decision: Decision;
  /** The old collection, when the run names it: each record's faces are checked against it. */
  source?: SourceCollection;
}

/** A batch that failed as a whole, and why. */
export interface FailedBatch {
  runId: string;
  chunkKey: string;
  detail: string;
}

export interface SplitProgress {
  /** Records read and handled so far, valid or not: where a retried attempt resumes. */
  records: number;
  chunks: number;
  validRecords: number;
  invalidRecords: number;
  /** The refused records by the reason they were refused for. */
  refusedByReason: ReasonCounts;
  faces: number;
  /** Where the records after `records` start in the file: a retried attempt reads from there. */
  cursor?: ReadCursor;
  /** The version of the records file being read; every attempt reads only that one. */
  etag?: string;
}

export interface SplitSummary extends SplitProgress {
  /** Chunk n is at `chunkKey(runId, n)`; all of them under this prefix. */
  chunkPrefix: string;
  /** The file could not be read to its end; the records before the break were split. */
  truncated: boolean;
  /** The run was cancelled while splitting: the records up to `records` were split, no more. */
  stopped?: boolean;
}

const SKIP_HEARTBEAT_EVERY = 1000;
/**
 * While the file is read, the cursor is heartbeated this often: well inside the heartbeat timeout,
 * and often enough that a cancelled run's split hears of it within seconds (the worker sends at
 * most one heartbeat every few seconds whatever this is).
 */
const READING_HEARTBEAT_EVERY_MS = 2_000;
/**
 * A chunk is cut at this size too, whatever its count of records: the batch loads it as one
 * activity result, and Temporal refuses payloads over 2 MB.
 */
const CHUNK_BYTES = 1024 * 1024;
/** A refusal's detail is cut here: a reader's message may quote the record. */
const REFUSAL_DETAIL_CHARS = 300;

/** A copy: the worker may serialise a queued heartbeat later, after the loop moved on. */
function snapshot(progress: SplitProgress): SplitProgress {
  return { ...progress, refusedByReason: { ...progress.refusedByReason } };
}

/** What the split did, without where it read to: the run keeps the counts, a retry the cursor. */
function countsOf({ cursor: _cursor, etag: _etag, ...counts }: SplitProgress): SplitProgress {
  return counts;
}

function emptyProgress(): SplitProgress {
  return { records: 0, chunks: 0, validRecords: 0, invalidRecords: 0, refusedByReason: {}, faces: 0 };
}

/** The body, passed through as it is read, with `cursor()` heartbeated every so often. */
function heartbeatingWhileRead(body: Readable, cursor: () => SplitProgress): Readable {
  let lastBeat = Date.now();
  const passing = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      if (Date.now() - lastBeat >= READING_HEARTBEAT_EVERY_MS) {
        lastBeat = Date.now();
        heartbeat(cursor());
      }
      done(null, chunk);
    },
  });
  // A failure to read the body reaches the reader through `passing`, which it destroys.
  pipeline(body, passing, () => undefined);
  return passing;
}

export function createManifestActivities({
  s3,
  sqs,
  config,
  findSourceFaces,
}: {
  s3: S3Client;
  sqs: SQSClient;
  config: Pick<Config, 'bucket' | 'resultsQueueUrl' | 'reviewDlqUrl'>;
  /** Which old faces the source still holds, and their users (createSourceFaceFinder). */
  findSourceFaces: (source: SourceCollection, faceIds: readonly string[]) => Promise<SourceFaces>;
}) {
  const { sendToReview } = createReviewSender({ sqs, config });
  const ledger = createLedger(s3, config.bucket);

  /**
   * The records file from byte `from` on, at version `etag` when one is known, and the version it
   * is. A cursor at the file's very end has nothing left to read.
   */
  async function openManifest(
    { Bucket, Key }: SplitManifestInput['manifest'],
    from: number,
    etag: string | undefined,
  ): Promise<{ body: Readable; etag: string | undefined }> {
    try {
      const { Body, ETag } = await s3.send(
        new GetObjectCommand({ Bucket, Key, IfMatch: etag, Range: from > 0 ? `bytes=${from}-` : undefined }),
      );
      return { body: Body as Readable, etag: ETag ?? etag };
    } catch (error) {
      const status = httpStatusOf(error);
      if (status === 416) return { body: Readable.from([]), etag };
      if (status === 412) {
        throw ApplicationFailure.create({
          type: ReasonCode.ManifestChanged,
          message: `the records file s3://${Bucket}/${Key} was replaced while the run read it (it was version ${etag}); start a new run for the new file`,
          nonRetryable: true,
        });
      }
      if (error instanceof NoSuchKey || status === 404 || status === 403) {
        throw ApplicationFailure.create({
          type: ReasonCode.ManifestNotFound,
          message: `the records file s3://${Bucket}/${Key} does not exist or may not be read (${(error as Error).name})`,
          nonRetryable: true,
        });
      }
      throw error;
    }
  }

  /** A chunk's entries, as the split wrote them. */
  /** A chunk that is not JSON stays so: it fails for good, not after half an hour of retries. */
  async function readChunk(key: string): Promise<ChunkEntry[]> {
    const { Body } = await s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }));
    const text = (await Body?.transformToString()) ?? '[]';
    try {
      return JSON.parse(text) as ChunkEntry[];
    } catch (error) {
      throw ApplicationFailure.create({
        type: ReasonCode.BatchFailed,
        message: `its chunk is not JSON: ${(error as Error).message}`,
        nonRetryable: true,
      });
    }
  }

  async function checkedEntries(entries: ChunkEntry[], source: SourceCollection | undefined): Promise<ChunkEntry[]> {
    if (source === undefined) return entries;
    const held = await findSourceFaces(
      source,
      entries.flatMap(({ record }) => record.Faces.map((face) => face.FaceId)),
    );
    return entries.map((entry) => {
      const { record, gone } = checkedAgainstSource(entry.record, held);
      return { ...entry, record, ...(gone.length > 0 ? { oldFacesGone: gone } : {}) };
    });
  }

  async function putObject(Key: string, Body: string, ContentType: string): Promise<string> {
    await s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body, ContentType }));
    return `s3://${config.bucket}/${Key}`;
  }

  return {
    /**
     * A chunk's records; with a lookup, each says whether the ledger already holds its indexing, so
     * that reindexImage goes straight to IndexFaces for the others: a ledger read between the
     * rate-limited dispatch and the call would let a slow S3 bunch calls past the quota. With a
     * source, each record's faces are checked against it: their users are the source's, and the
     * faces it no longer holds are named.
     */
    loadChunk: async (key: string, lookup?: LedgerLookup): Promise<ChunkEntry[]> => {
      const entries = await checkedEntries(await readChunk(key), lookup?.source);
      // Histories from before the lookup carried the settings do not look up: reindexImage looks itself.
      if (lookup?.decision === undefined) return entries;
      const records = entries.map(({ record }) => record);
      const externalIds = records.flatMap((record) =>
        record.ExternalImageId === undefined ? [] : [record.ExternalImageId],
      );
      const [found] = await Promise.all([
        ledger.hasIndexings(lookup.targetCollectionId, records, lookup.decision),
        // Before any of them is indexed: reconcile may then delete what a crashed attempt left.
        ledger.recordExternalIds(lookup.targetCollectionId, externalIds, lookup.runId),
      ]);
      return entries.map((entry, i) => ({ ...entry, indexedBefore: found[i] ?? true }));
    },

    /**
     * Accounts for a batch that failed as a whole: every face of its chunk goes to review as
     * BATCH_FAILED with the batch's error, since which of its images were migrated is not known
     * (a redrive reuses whatever was). A chunk that cannot be read either gets one message naming
     * it, and its images count as not processed.
     */
    reviewFailedBatch: async ({
      runId,
      chunkKey: key,
      detail,
    }: FailedBatch): Promise<{ images: number; faces: number; messages: number }> => {
      let entries: ChunkEntry[];
      try {
        entries = await readChunk(key);
      } catch (error) {
        const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        await sendToReview([
          {
            reason: ReasonCode.BatchFailed,
            detail: `${detail}; its chunk s3://${config.bucket}/${key} cannot be read (${why}), so its records were not migrated`,
            runId,
            Bucket: undefined,
            Key: undefined,
            ExternalImageId: undefined,
            face: undefined,
          },
        ]);
        return { images: 0, faces: 0, messages: 1 };
      }
      const items = batchFailedReview(entries, runId, detail);
      await whileAlive(() => sendToReview(items));
      return { images: entries.length, faces: items.length, messages: items.length };
    },

    /**
     * The summary as JSON, and as a two-column CSV (one row per figure, one per DLQ reason) for a
     * spreadsheet; a completed run is recorded in its target's ledger as the collection's migration.
     */
    writeReport: async (summary: Omit<RunSummary, 'report'>): Promise<NonNullable<RunSummary['report']>> => {
      const { dlqByReason, ...figures } = summary;
      const rows = [
        ['figure', 'value'],
        ...Object.entries(figures).map(([figure, value]) => [figure, String(value)]),
        ...Object.entries(dlqByReason).map(([reason, count]) => [`dlq.${reason}`, String(count)]),
      ];
      const [json, csv] = await Promise.all([
        putObject(reportKey(summary.workflowId, 'json'), JSON.stringify(summary, null, 2), 'application/json'),
        putObject(reportKey(summary.workflowId, 'csv'), csvText(rows), 'text/csv'),
      ]);
      if (summary.status === 'completed') {
        const { workflowId: runId, images, matched } = summary;
        await ledger.recordMigration(summary.targetCollectionId, {
          runId,
          endedAt: new Date().toISOString(),
          images,
          matched,
        });
      }
      return { json, csv };
    },

    splitManifest: async (input: SplitManifestInput): Promise<SplitSummary> => {
      const chunkPrefix = chunkKey(input.runId);
      const resumed = activityInfo().heartbeatDetails as SplitProgress | undefined;
      const progress = resumed ?? emptyProgress();
      /** The cursor as of the last flush: what a retried attempt may resume from. */
      let flushed = snapshot(progress);
      /** The chunk's entries, each already serialised, so its size is known as it grows. */
      let chunk: string[] = [];
      let chunkBytes = 0;
      let refused: ReviewItem[] = [];
      let truncated = false;

      const flush = async () => {
        if (chunk.length > 0) {
          await s3.send(
            new PutObjectCommand({
              Bucket: config.bucket,
              Key: chunkKey(input.runId, progress.chunks),
              Body: `[${chunk.join(',')}]`,
              ContentType: 'application/json',
            }),
          );
          progress.chunks += 1;
        }
        await sendToReview(refused);
        chunk = [];
        chunkBytes = 0;
        refused = [];
        flushed = snapshot(progress);
        heartbeat(flushed);
      };

      // A refused record may hold anything a file can (personal columns, 128 KB of text):
      // its position, reason and face ids are kept.
      const refuse = (index: number, reason: ReasonCode, detail: string, record: unknown) => {
        refused.push({
          reason,
          detail: detail.length > REFUSAL_DETAIL_CHARS ? `${detail.slice(0, REFUSAL_DETAIL_CHARS)}…` : detail,
          runId: input.runId,
          Bucket: undefined,
          Key: undefined,
          ExternalImageId: undefined,
          face: undefined,
          recordIndex: index,
          faceIds: faceIdsNamed(record),
        });
        progress.invalidRecords += 1;
      };

      /** The entries from `progress.records` on: an attempt before cursors re-reads the file from its start. */
      async function* unread(entries: AsyncIterable<RecordEntry>): AsyncGenerator<RecordEntry> {
        for await (const entry of entries) {
          // Skipping a long head must not look like a hung attempt.
          if (entry.index >= progress.records) yield entry;
          else if (entry.index % SKIP_HEARTBEAT_EVERY === 0) heartbeat(snapshot(progress));
        }
      }

      /** Reads the file from the cursor on (from its start when there is none), flushing as chunks fill. */
      const splitFrom = async (cursor: ReadCursor | undefined): Promise<void> => {
        const opened = await openManifest(input.manifest, cursor?.byte ?? 0, progress.etag ?? input.manifestETag);
        progress.etag = opened.etag;
        const body = heartbeatingWhileRead(opened.body, () => flushed);
        const outcomes = checkedRecords(unread(readRecords(body, cursor)), {
          selection: input.selection,
          refusedByReason: progress.refusedByReason,
        });
        for await (const outcome of outcomes) {
          if (outcome.after) progress.cursor = outcome.after;
          progress.records = outcome.index + 1;
          if (outcome.kind === 'accepted') {
            const serialised = JSON.stringify({ index: outcome.index, record: outcome.record } satisfies ChunkEntry);
            chunk.push(serialised);
            chunkBytes += Buffer.byteLength(serialised);
            progress.validRecords += 1;
            progress.faces += outcome.record.Faces.length;
          } else if (outcome.kind === 'invalid') {
            refuse(outcome.index, outcome.reason, outcome.detail, outcome.value);
          } else if (outcome.kind === 'malformed') {
            refuse(outcome.index, outcome.reason, outcome.detail, undefined);
          }
          // Another run's record (kind otherRun) is that run's to take; this one only reads past it.
          if ('fatal' in outcome && outcome.fatal) {
            truncated = true;
            break;
          }
          // Either buffer may fill first; flushing both keeps memory bounded and the cursor honest.
          if (chunk.length >= input.chunkSize || chunkBytes >= CHUNK_BYTES || refused.length >= input.chunkSize)
            await flush();
        }
        await flush();
      };

      try {
        await splitFrom(progress.cursor);
      } catch (error) {
        // Cancelled (the run was): what was flushed is the split, and the run ends with it.
        if (cancellationDetails()?.cancelRequested)
          return { ...countsOf(flushed), chunkPrefix, truncated: false, stopped: true };
        throw error;
      }
      return { ...countsOf(progress), chunkPrefix, truncated };
    },
  };
}
