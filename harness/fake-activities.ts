/**
 * Every activity the workflows call, held in memory, so the workflows' own behaviour (batches,
 * pause, cancel, continue-as-new, duplicates, failures that end) is tested on the time-skipping
 * server in seconds. It keeps what a user checks after a run: the target's faces, the results table,
 * the review DLQ, the report and every IndexFaces call. The real activities are tested against the
 * local stack (test/activities, test/e2e); this stand-in answers as they do, by their types.
 */
/* eslint-disable @typescript-eslint/require-await -- the stand-ins answer at once; activities are async */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { ControlActivities, IndexFacesActivities } from '../src/activities';
import type { DrainWindow } from '../src/activities/drain';
import type { ChunkEntry } from '../src/activities/manifest';
import type { ImageRecord } from '../src/domain/records';
import { batchFailedReview, type ResultRow, type ReviewItem } from '../src/domain/outcomes';
import { ReasonCode } from '../src/domain/reasons';
import { chunkKey, type RunSummary } from '../src/shared';

/** The activities the workflows call; any other would be a missing stand-in, caught by the type check. */
type Called =
  | 'prepareTarget'
  | 'splitManifest'
  | 'loadChunk'
  | 'publishResults'
  | 'sendToReview'
  | 'retractRows'
  | 'reviewFailedBatch'
  | 'drainContinuously'
  | 'migrateUsers'
  | 'reconcile'
  | 'countResultsInDlq'
  | 'writeReport'
  | 'tagRunEnded';

/** One image of a records file: the old faces its record names, and whether the image is there. */
export interface FakeImage {
  oldFaceIds: string[];
  userId?: string;
  /** IndexFaces answers IMAGE_NOT_FOUND, until the image is put back with `restore`. */
  missing?: boolean;
}

interface QueuedRow {
  row: ResultRow;
  sentAtMs: number;
}

export interface FakeMigrationOptions {
  /** Real time each IndexFaces call takes. */
  indexFacesMs?: number;
  /** A row that waited longer than this in the results queue makes a drain answer `behind`. */
  resultsWaitLimitMs?: number;
  /** IndexFaces calls past this many hold until `releaseIndexFaces`: images surely in flight. */
  holdIndexFacesAfter?: number;
  /** The old migrateUsers, which counted no rows: the run keeps the drains' count. */
  usersCountNoRows?: boolean;
  /** Drains answer as a worker killed before its heartbeat would: rows written, none counted. */
  drainCountsLost?: boolean;
  /** The first this many drain windows find other runs' rows in the shared queue: not empty. */
  busyWindows?: number;
  /** Other runs' drains settle this run's duplicates: its own drains count none of them. */
  duplicatesSettledElsewhere?: boolean;
}

/** An in-memory account: records files, chunks, collections, queues and the results table. */
export class FakeMigration {
  private readonly files = new Map<string, ImageRecord[]>();
  /** Each image by its key. */
  private readonly images = new Map<string, FakeImage>();
  private readonly chunks = new Map<string, ChunkEntry[] | 'unreadable'>();
  private readonly collections = new Map<string, Set<string>>();
  private readonly resultsQueue: QueuedRow[] = [];
  private readonly table = new Map<string, ResultRow>();
  /** Duplicates settled against each run's rows, by its workflow id. */
  private readonly settled = new Map<string, number>();
  /** Every drain window asked for, in order. */
  readonly drainWindows: DrainWindow[] = [];
  private faceCount = 0;
  /** Every review-DLQ message sent, in order. */
  readonly review: ReviewItem[] = [];
  /** Each run's report, by its workflow id. */
  readonly reports = new Map<string, Omit<RunSummary, 'report'>>();
  /** IndexFaces calls made, throttled ones included. */
  indexFacesCalls = 0;
  /** While set, IndexFaces is throttled: the call is retried, never sent to review. */
  throttled = false;
  /** While set, every IndexFaces call fails for good with this reason. */
  failingWith: ReasonCode | undefined;

  private releaseHeld: () => void = () => undefined;
  private readonly held = new Promise<void>((release) => {
    this.releaseHeld = release;
  });

  constructor(private readonly options: FakeMigrationOptions = {}) {}

  /** Lets the IndexFaces calls held by `holdIndexFacesAfter` answer. */
  releaseIndexFaces(): void {
    this.releaseHeld();
  }

  /** A records file of `images`, at a key of its own; returns where it is. */
  writeRecords(images: FakeImage[]): { Bucket: string; Key: string } {
    const Key = `records/${this.files.size}.jsonl`;
    const records = images.map((image, index) => {
      const imageKey = `${Key}/image-${index}.jpg`;
      this.images.set(imageKey, image);
      return {
        Bucket: 'images',
        Key: imageKey,
        Faces: image.oldFaceIds.map((FaceId) => ({
          FaceId,
          ...(image.userId === undefined ? {} : { UserId: image.userId }),
          BoundingBoxes: { Width: 0.4, Height: 0.4, Left: 0.2, Top: 0.2 },
        })),
      };
    });
    this.files.set(Key, records);
    return { Bucket: 'records', Key };
  }

  /** Puts back every missing image. */
  restoreImages(): void {
    for (const image of this.images.values()) delete image.missing;
  }

  /** Replaces a chunk of a run with bytes that are not a chunk. */
  breakChunk(runId: string, batch: number): void {
    this.chunks.set(chunkKey(runId, batch), 'unreadable');
  }

  facesIn(collectionId: string): string[] {
    return [...(this.collections.get(collectionId) ?? [])].sort();
  }

  rowsOf(runId: string): ResultRow[] {
    return [...this.table.values()].filter((row) => row.RunId === runId);
  }

  /** Messages still waiting in the results queue. */
  get queued(): number {
    return this.resultsQueue.length;
  }

  private publish(rows: ResultRow[]): void {
    this.resultsQueue.push(...rows.map((row) => ({ row, sentAtMs: Date.now() })));
  }

  private target(collectionId: string): Set<string> {
    const faces = this.collections.get(collectionId) ?? new Set<string>();
    this.collections.set(collectionId, faces);
    return faces;
  }

  private get control(): Pick<ControlActivities, Called> {
    return {
      prepareTarget: async ({ targetCollectionId }) => {
        const created = !this.collections.has(targetCollectionId);
        this.target(targetCollectionId);
        return { targetFaceModelVersion: '7.0', sourceFaceModelVersion: undefined, created };
      },
      splitManifest: async ({ runId, manifest, chunkSize }) => {
        const entries = (this.files.get(manifest.Key) ?? []).map((record, index) => ({ index, record }));
        let chunks = 0;
        for (let start = 0; start < entries.length; start += chunkSize) {
          this.chunks.set(chunkKey(runId, chunks), entries.slice(start, start + chunkSize));
          chunks += 1;
        }
        return {
          chunkPrefix: chunkKey(runId),
          records: entries.length,
          chunks,
          validRecords: entries.length,
          invalidRecords: 0,
          refusedByReason: {},
          faces: entries.reduce((faces, { record }) => faces + record.Faces.length, 0),
          truncated: false,
        };
      },
      loadChunk: async (key) => {
        const chunk = this.chunks.get(key);
        if (chunk === 'unreadable' || chunk === undefined)
          throw ApplicationFailure.create({
            type: ReasonCode.BatchFailed,
            message: `its chunk is not JSON: Unexpected token`,
            nonRetryable: true,
          });
        return chunk.map((entry) => ({ ...entry, indexedBefore: false }));
      },
      publishResults: async (rows) => {
        this.publish(rows);
      },
      sendToReview: async (items) => {
        this.review.push(...items);
      },
      retractRows: async () => undefined,
      reviewFailedBatch: async ({ runId, chunkKey: key, detail }) => {
        const chunk = this.chunks.get(key);
        if (chunk === 'unreadable' || chunk === undefined) {
          this.review.push({
            reason: ReasonCode.BatchFailed,
            detail: `${detail}; its chunk s3://records/${key} cannot be read, so its records were not migrated`,
            runId,
            Bucket: undefined,
            Key: undefined,
            ExternalImageId: undefined,
            face: undefined,
          });
          return { images: 0, faces: 0, messages: 1 };
        }
        const items = batchFailedReview(chunk, runId, detail);
        this.review.push(...items);
        return { images: chunk.length, faces: items.length, messages: items.length };
      },
      drainContinuously: async (window) => {
        const { runId, heldBack, accountFor } = window;
        this.drainWindows.push(window);
        const busy = this.drainWindows.length <= (this.options.busyWindows ?? 0);
        // A busy window drains for a while, as a real one does until its time is up.
        if (busy) await sleep(20);
        const taken = this.resultsQueue.splice(0);
        const oldestAgeMs = Math.max(0, ...taken.map(({ sentAtMs }) => Date.now() - sentAtMs));
        let written = 0;
        let duplicatesOfRun = 0;
        for (const { row } of taken) {
          const key = `${row.CollectionId}/${row.OldFaceId}`;
          const kept = this.table.get(key);
          if (kept === undefined || kept.RecordIndex === row.RecordIndex) {
            this.table.set(key, row);
            written += 1;
            continue;
          }
          // A second record naming a migrated old face: its new face goes, and it goes to review.
          this.target(row.CollectionId).delete(row.FaceId);
          this.review.push({
            reason: ReasonCode.DuplicateFaceId,
            detail: `old face ${row.OldFaceId} was migrated already by record ${kept.RecordIndex}`,
            runId: row.RunId,
            Bucket: row.Bucket,
            Key: row.Key,
            ExternalImageId: undefined,
            face: undefined,
          });
          this.settled.set(row.RunId, (this.settled.get(row.RunId) ?? 0) + 1);
          if (row.RunId === runId && !this.options.duplicatesSettledElsewhere) duplicatesOfRun += 1;
        }
        const accounted =
          accountFor !== undefined && this.rowsOf(runId).length + (this.settled.get(runId) ?? 0) >= accountFor.rowsSent;
        const limit = this.options.resultsWaitLimitMs;
        const behind = limit !== undefined && oldestAgeMs > limit;
        const backlog = heldBack === undefined ? undefined : behind ? 'behind' : heldBack ? 'caughtUp' : undefined;
        return {
          written: this.options.drainCountsLost ? 0 : written,
          duplicatesOfRun,
          oldestAgeMs,
          queueEmpty: !busy,
          ...(backlog ? { backlog } : {}),
          ...(accounted ? { runAccounted: true } : {}),
        };
      },
      migrateUsers: async ({ runId }) => {
        const rows = this.rowsOf(runId);
        const withUsers = rows.filter((row) => row.UserId !== undefined);
        return {
          ...(this.options.usersCountNoRows
            ? {}
            : { rowsOfRun: rows.length, duplicatesOfRun: this.settled.get(runId) ?? 0 }),
          usersCreated: new Set(withUsers.map((row) => row.UserId)).size,
          facesAssociated: withUsers.length,
          refusedByReason: {},
        };
      },
      reconcile: async (targetCollectionId) => {
        const faces = this.target(targetCollectionId);
        const named = new Set([...this.table.values()].map((row) => row.FaceId));
        const orphans = [...faces].filter((faceId) => !named.has(faceId));
        for (const faceId of orphans) faces.delete(faceId);
        return { facesChecked: faces.size + orphans.length, orphansDeleted: orphans.length, unattributedKept: 0 };
      },
      countResultsInDlq: async () => 0,
      writeReport: async (summary) => {
        this.reports.set(summary.workflowId, summary);
        return {
          json: `runs/${summary.workflowId}/report/summary.json`,
          csv: `runs/${summary.workflowId}/report/summary.csv`,
        };
      },
      tagRunEnded: async () => 0,
    };
  }

  private get indexFaces(): IndexFacesActivities {
    return {
      // Today's batches have every image publish its own rows (the batch's `images-publish-outcomes` patch).
      reindexImage: async ({ runId, recordIndex, record, targetCollectionId }) => {
        this.indexFacesCalls += 1;
        if (this.throttled)
          throw ApplicationFailure.retryable('Provisioned rate exceeded', 'ProvisionedThroughputExceededException');
        if (this.options.indexFacesMs) await sleep(this.options.indexFacesMs);
        const hold = this.options.holdIndexFacesAfter;
        if (hold !== undefined && this.indexFacesCalls > hold) await this.held;
        const reason =
          this.failingWith ?? (this.images.get(record.Key)?.missing ? ReasonCode.ImageNotFound : undefined);
        if (reason !== undefined)
          throw ApplicationFailure.create({
            type: reason,
            message: `IndexFaces refused ${record.Key}: ${reason}`,
            nonRetryable: true,
          });
        const rows = record.Faces.map<ResultRow>((face) => {
          this.faceCount += 1;
          const FaceId = `new-face-${this.faceCount}`;
          this.target(targetCollectionId).add(FaceId);
          return {
            OldFaceId: face.FaceId,
            FaceId,
            OldImageId: undefined,
            ImageId: `new-image-${recordIndex}`,
            ExternalImageId: undefined,
            UserId: face.UserId,
            Bucket: record.Bucket,
            Key: record.Key,
            BoundingBox: face.BoundingBoxes,
            OldBoundingBox: face.BoundingBoxes,
            IoU: 1,
            SourceCollectionId: undefined,
            CollectionId: targetCollectionId,
            FaceModelVersion: '7.0',
            RunId: runId,
            MigratedAt: new Date().toISOString(),
            RecordIndex: recordIndex,
          };
        });
        this.publish(rows);
        return { matched: rows.length, reviewByReason: {}, unmatchedNew: 0, reusedEarlierIndexing: false };
      },
    };
  }

  /** The activities, as a worker registers them. */
  get activities(): { control: Pick<ControlActivities, Called>; indexFaces: IndexFacesActivities } {
    return { control: this.control, indexFaces: this.indexFaces };
  }
}
