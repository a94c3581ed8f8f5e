/**
 * Names and types shared by workflows, worker, client and the local stack: task queues, the custom
 * search attributes that make runs findable in the Temporal UI, signals, queries, and what a run
 * takes and reports. Safe to import from workflow code.
 */
import type { QualityFilter } from '@aws-sdk/client-rekognition';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { FaceKey } from './domain/image-locations';
import type { ReasonCode, ReasonCounts } from './domain/reasons';
import type { RecordsSelection } from './domain/records';

/**
 * A deployment's two task queues, named from one (REINDEX_TASK_QUEUE), so several deployments, or
 * test suites, share a namespace without taking each other's work. A workflow finds them from
 * the queue it runs on.
 */
export function taskQueues(control: string) {
  return {
    /** Workflows and the control activities (S3, SQS, DynamoDB). */
    control,
    /** IndexFaces only; the Temporal server enforces the account's rate limit on this queue. */
    indexFaces: `${control}-index-faces`,
  };
}

export { DEFAULT_TASK_QUEUE } from './domain/task-queue';

/** How long one attempt of reindexImage may take; reconcile waits this long for other runs' attempts. */
export const REINDEX_IMAGE_ATTEMPT_MS = 2 * 60_000;
/**
 * An attempt that has not heartbeated this long is retried: a worker that died mid-image holds its
 * images for this long, not for the whole attempt timeout. Attempts heartbeat only once they run long.
 */
export const REINDEX_IMAGE_HEARTBEAT_TIMEOUT_MS = 30_000;

/**
 * How long an image's failures are retried, unless the run says otherwise (--retry-minutes):
 * failures other than throttling, which is waited out for as long as it lasts.
 */
export const DEFAULT_RETRY_MINUTES = 30;
/** Images in a row failing for one reason that pause a run, unless it says otherwise (--pause-after-failures). */
export const DEFAULT_PAUSE_AFTER_FAILURES = 20;

export const SEARCH_ATTRIBUTES = {
  phase: defineSearchAttributeKey('ReindexPhase', SearchAttributeType.KEYWORD),
  processed: defineSearchAttributeKey('ReindexProcessed', SearchAttributeType.INT),
  failed: defineSearchAttributeKey('ReindexFailed', SearchAttributeType.INT),
  paused: defineSearchAttributeKey('ReindexPaused', SearchAttributeType.BOOL),
  /**
   * The collection a run migrates into, so the UI finds every run of one collection. The run's
   * workflow id names it already (`<plan>/<target>`, `reindex-<target>-<time>`): neither is encrypted.
   */
  collection: defineSearchAttributeKey('ReindexCollection', SearchAttributeType.KEYWORD),
} as const;

/** The search attributes a run into `targetCollectionId` starts with, before its first phase sets them. */
export function startingSearchAttributes(targetCollectionId: string) {
  return [...STARTING_SEARCH_ATTRIBUTES, { key: SEARCH_ATTRIBUTES.collection, value: targetCollectionId }];
}

/** The search attributes every run starts with, before its first phase sets them. */
export const STARTING_SEARCH_ATTRIBUTES = [
  { key: SEARCH_ATTRIBUTES.phase, value: 'preparing' },
  { key: SEARCH_ATTRIBUTES.processed, value: 0 },
  { key: SEARCH_ATTRIBUTES.failed, value: 0 },
  { key: SEARCH_ATTRIBUTES.paused, value: false },
] as const;

/** Where a run keeps chunk n of its records file in the bucket; without n, the folder of all chunks. */
export function chunkKey(runId: string, n?: number): string {
  return `runs/${runId}/chunks/${n === undefined ? '' : `${String(n).padStart(8, '0')}.json`}`;
}

/** The records file this tool writes for a run it starts: `dlq redrive`'s, and a sync's of the faces added. */
export function redriveRecordsKey(runId: string): string {
  return `runs/${runId}/redrive/records.jsonl`;
}

/**
 * The tag a run puts on every object under `runs/<run>/` once it has ended: the bucket's lifecycle
 * rule expires tagged objects only, so nothing a run still reads expires while it runs.
 */
export const RUN_ENDED_TAG = { Key: 'reindex-run', Value: 'ended' } as const;

/**
 * The tag the worker puts on every collection it migrates into, when it creates one or a run
 * claims an empty one: the worker's IAM policy lets it write and delete faces and users only in
 * collections that carry it, so no mistake of the tool's can reach a collection it did not take.
 */
export const MIGRATION_TARGET_TAG = { Key: 'rekognition-reindex', Value: 'migration-target' } as const;

/** Where a run's report is in the bucket, as JSON or CSV. */
export function reportKey(workflowId: string, format: 'json' | 'csv'): string {
  return `runs/${workflowId}/report/summary.${format}`;
}

/** How each image is migrated; chosen per run. */
export interface ReindexOptions {
  /** Old and new boxes must overlap at least this much (intersection over union) to match. */
  iouThreshold: number;
  qualityFilter: QualityFilter;
  maxFaces: number | undefined;
  /** What to do with new faces no old face claimed. */
  unmatched: 'delete' | 'keep';
  /**
   * Set, an image is indexed afresh for this scope instead of reusing an indexing an earlier run
   * recorded for the same record. A redrive sets its run id: the earlier run deleted the faces it
   * did not match, so its indexing cannot answer a fixed box or a lower threshold.
   */
  indexingScope?: string;
  /** Set, each row carries ExpiresAt this many days after it was decided, for the table's time to live. */
  rowsExpireDays?: number;
}

export interface ReindexCollectionInput {
  manifest: { Bucket: string; Key: string };
  /** The records file's ETag when the run was started: the run reads that version, or fails with MANIFEST_CHANGED. */
  manifestETag?: string;
  targetCollectionId: string;
  /** The old collection, when known: its face model is checked and named in every result row. */
  sourceCollectionId: string | undefined;
  /** When runs of many collections share the records file: the records that are this run's. */
  records?: RecordsSelection;
  /** The old collection's region, when it is not the worker's; absent in runs started before it was asked. */
  sourceRegion?: string;
  options: ReindexOptions;
  /** Migrate even when the target's face model is not newer than the source's. */
  force: boolean;
  /** Records per chunk, and so per batch child workflow. */
  batchSize: number;
  batchesInFlight: number;
  imagesInFlightPerBatch: number;
  /** Batches one execution starts before it continues as new; kept small by tests. */
  batchesPerExecution: number;
  /**
   * How long one image's failures are retried
   * (DEFAULT_RETRY_MINUTES when absent, as in runs started before it was asked).
   */
  retryMinutes?: number;
  /**
   * Images in a row failing for one reason that pause the run;
   * 0 never pauses (DEFAULT_PAUSE_AFTER_FAILURES when absent).
   */
  pauseAfterFailures?: number;
  /** What a continued-as-new execution takes over from the one before; absent at the start. */
  carried?: CarriedState;
}

export type RunPhase =
  'preparing' | 'splitting' | 'indexing' | 'draining' | 'users' | 'reconciling' | 'reporting' | 'done';

/** Counts over every batch finished so far. */
export interface BatchTotals {
  images: number;
  faces: number;
  matched: number;
  unmatchedOld: number;
  unmatchedNewDeleted: number;
  unmatchedNewKept: number;
  /** Images an earlier, crashed attempt had indexed already; reused, not indexed twice. */
  reusedIndexings: number;
  /** Images a stopped run never got to: neither indexed nor in the DLQ. */
  notProcessed: number;
  dlqByReason: ReasonCounts;
}

export interface CarriedState {
  phase: RunPhase;
  paused: boolean;
  /** Set while the run is paused because the circuit breaker tripped, not by an operator. */
  pausedBy?: BreakerTrip;
  /**
   * Failures in a row for one reason that batches ended with, summed across batches;
   * cleared by a batch that ended well.
   */
  runStreak?: Omit<TrailingStreak, 'batch'>;
  startedAtMs: number;
  indexingStartedAtMs: number | undefined;
  target:
    | { collectionId: string; faceModelVersion: string; sourceFaceModelVersion: string | undefined; created: boolean }
    | undefined;
  split:
    | {
        chunkPrefix: string;
        chunks: number;
        validRecords: number;
        invalidRecords: number;
        refusedByReason: ReasonCounts;
        faces: number;
        truncated: boolean;
      }
    | undefined;
  batchesDone: number;
  totals: BatchTotals;
  resultsWritten: number;
  /** The longest a result row waited in the results queue before a drain took it. */
  resultsMaxWaitMs?: number;
  /** Set while new images wait because rows waited too long in the results queue. */
  heldForResults?: boolean;
  /** How many times new images waited for the drain. */
  resultsHolds?: number;
  /**
   * Result rows the run's batches sent, so its end can tell when the table holds them all. Absent
   * from runs that began before the count, and once a batch failed: rows it sent before it failed
   * are not known.
   */
  rowsSent?: number;
}

export interface RunProgress {
  phase: RunPhase;
  paused: boolean;
  /** Why the run paused itself; absent when an operator paused it or it runs. */
  pausedBy?: BreakerTrip;
  stopping: boolean;
  targetCollectionId: string;
  targetFaceModelVersion: string | undefined;
  records: { valid: number; invalid: number; truncated: boolean } | undefined;
  batches: { total: number; done: number; running: number };
  /** Images of the valid records; `totals.images` of them are done. */
  imagesTotal: number | undefined;
  totals: BatchTotals;
  dlq: number;
  /** Every DLQ message so far by reason: refused records and faces not migrated. */
  dlqByReason: ReasonCounts;
  resultsWritten: number;
  /** The longest a result row has waited in the results queue before a drain took it, so far. */
  resultsMaxWaitMs: number | undefined;
  /** True while no new image starts because rows wait too long in the results queue. */
  heldForResults: boolean;
  /** How many times new images waited for the drain to catch up. */
  resultsHolds: number;
  imagesPerSecond: number;
  etaSeconds: number | undefined;
  elapsedMs: number;
}

/** What a finished run reports: the last line of `reindex start --wait --json`. */
export interface RunSummary extends Omit<BatchTotals, 'reusedIndexings'> {
  workflowId: string;
  status: 'completed' | 'cancelled';
  dlq: number;
  /** Every DLQ message by reason: refused records, faces not migrated, faces no user could take. */
  dlqByReason: ReasonCounts;
  invalidRecords: number;
  resultsWritten: number;
  /**
   * This run's rows in the results DLQ when it ended: their faces are in the target, without a row
   * in the table, until `reindex dlq requeue-results` sends them back. Absent from runs before the count.
   */
  resultsInDlq?: number;
  /** The longest a result row waited in the results queue; absent from runs that did not drain continuously. */
  resultsMaxWaitMs?: number;
  /** How many times new images waited for the drain to catch up; absent from runs before holding back. */
  resultsHolds?: number;
  usersCreated: number;
  facesAssociated: number;
  orphansDeleted: number;
  /** Faces of the target no record keeps that nothing proves this tool indexed: kept, never deleted. */
  unattributedKept?: number;
  targetCollectionId: string;
  sourceCollectionId: string | undefined;
  faceModelVersion: string;
  /** The IoU threshold the run matched with. */
  iouThreshold: number;
  durationMs: number;
  report: { json: string; csv: string } | undefined;
}

/** One collection of a plan: its records file, run into its own target. */
export interface PlannedRun {
  targetCollectionId: string;
  manifest: { Bucket: string; Key: string };
  /** The records file's ETag when the plan was started: its run reads that version. */
  manifestETag?: string;
  sourceCollectionId: string | undefined;
  /** When the collections share one records file: this collection's records of it. */
  records?: RecordsSelection;
  /** Images to migrate, when the plan counted them: the smallest collections start first. */
  images?: number;
}

/** Settings every collection's run of a plan takes: a run's input without what is its own. */
export type PlanRunSettings = Omit<
  ReindexCollectionInput,
  'manifest' | 'manifestETag' | 'targetCollectionId' | 'sourceCollectionId' | 'records' | 'carried'
>;

export interface ReindexPlanInput {
  collections: PlannedRun[];
  settings: PlanRunSettings;
  /** Collections' runs at once, all on the one IndexFaces rate. */
  collectionsInFlight: number;
}

/** Where one collection of a plan is: its run's id, and its summary or error once it has ended. */
export interface PlannedRunState {
  targetCollectionId: string;
  workflowId: string;
  state: 'waiting' | 'running' | 'completed' | 'cancelled' | 'failed';
  summary?: RunSummary;
  error?: string;
}

export interface PlanProgress {
  paused: boolean;
  stopping: boolean;
  collections: PlannedRunState[];
}

/** What a finished plan reports: each collection's run, and the figures of all of them. */
export interface PlanSummary {
  workflowId: string;
  status: 'completed' | 'cancelled';
  collections: PlannedRunState[];
  totals: Pick<
    RunSummary,
    'images' | 'faces' | 'matched' | 'unmatchedOld' | 'dlq' | 'resultsWritten' | 'usersCreated' | 'facesAssociated'
  >;
  durationMs: number;
}

export interface ReindexBatchInput {
  runId: string;
  batch: number;
  chunkKey: string;
  targetCollectionId: string;
  sourceCollectionId: string | undefined;
  /** The old collection's region, when it is not the worker's. */
  sourceRegion?: string;
  options: ReindexOptions;
  imagesInFlight: number;
  paused: boolean;
  /** Started while its run holds back new images for the drain (resultsBacklogSignal). */
  heldBack?: boolean;
  retryMinutes?: number;
  pauseAfterFailures?: number;
}

export interface BatchSummary extends BatchTotals {
  batch: number;
  /** The batch's last images failed in a row for one reason, and its run let them go to review. */
  endedFailing?: boolean;
}

/** Stop starting IndexFaces calls; calls in flight finish. */
export const pauseSignal = defineSignal('pause');
/** Go on where the run paused. */
export const resumeSignal = defineSignal('resume');
export const progressQuery = defineQuery<RunProgress>('progress');
/** A plan's collections: which wait, run or have ended, with their summaries. */
export const planProgressQuery = defineQuery<PlanProgress>('planProgress');
/**
 * From a run to its batches: `held` while rows wait too long in the results queue, so no new image
 * starts until the drain catches up; images in flight finish. Apart from pause, which an operator
 * owns and which calls back queued images too.
 */
export const resultsBacklogSignal = defineSignal<[{ held: boolean }]>('resultsBacklog');

/** Why a run paused itself: images in a row of one batch failed for one reason, and the first of them said this. */
export interface BreakerTrip {
  reason: ReasonCode;
  images: number;
  batch: number;
  firstError: string;
}
/** From a batch to its run: the batch paused itself, and the run should pause every batch. */
export const breakerTrippedSignal = defineSignal<[BreakerTrip]>('breakerTripped');
/**
 * Images that failed in a row for one reason at the end of a batch, not yet in review: they may
 * continue a streak other batches ended with, which a batch smaller than --pause-after-failures
 * cannot see alone.
 */
export interface TrailingStreak {
  batch: number;
  reason: ReasonCode;
  images: number;
  firstError: string;
}
/** From a batch to its run, before it sends a trailing streak to review. */
export const streakAtEndSignal = defineSignal<[TrailingStreak]>('streakAtEnd');
/**
 * From a run to a batch that told it of its trailing streak:
 * `trip` holds the images to run again on resume; otherwise they go to review.
 */
export const streakVerdictSignal = defineSignal<[{ trip: boolean }]>('streakVerdict');

/** The run that migrates the faces a sync found added to the old collection. */
export function syncAdditionsRunId(syncId: string): string {
  return `${syncId}/additions`;
}

/**
 * Where a sync finds the images of faces added to the old collection, as `prepare` does: by
 * ExternalImageId, by a key template, or by a mapping file in S3 (its UserIds are not read: the old
 * collection says whose each face is).
 */
export type SyncPlacement =
  | { mode: 'external-image-id'; bucket: string; prefix: string; suffix: string }
  | { mode: 'template'; template: string }
  | { mode: 'mapping'; file: { Bucket: string; Key: string }; key?: FaceKey };

export interface SyncInput {
  sourceCollectionId: string;
  /** The old collection's region, when it is not the worker's. */
  sourceRegion?: string;
  targetCollectionId: string;
  placement: SyncPlacement;
  /** How the run that migrates the faces added to the old collection runs. */
  run: PlanRunSettings;
}

/** What one pass of a sync found and changed in the target. */
export interface SyncPass {
  /** When the pass began listing the old collection. */
  listedAt: string;
  oldFaces: number;
  /** Rows of the target, those of faces a sync deleted not counted. */
  rows: number;
  /** New faces deleted from the target because their old faces are gone; their rows are marked deleted. */
  deleted: number;
  /**
   * From the previous sync's listing to this pass's last deletion: how long a face deleted from the
   * old collection may have outlived it in the target. Absent at the first sync.
   */
  deletionLagMs?: number;
  /** Migrated faces moved to their old faces' users (or out of any). */
  userChanges: number;
  /** Of those, faces Rekognition would not associate with their user (a user holds at most 100). */
  userChangesRefused: number;
  /** Users deleted from the target, left with no face. */
  usersDeleted: number;
  /** Faces added to the old collection, as records for a run; unplaced faces went to review. */
  additions: { faces: number; images: number; unplaced: number };
  /** Old faces without a row left for a later sync, because runs into the target were in flight. */
  additionsDeferred: number;
  /** The records file of the additions, when there are any to migrate now. */
  records?: { Bucket: string; Key: string };
}

export interface SyncSummary extends Omit<SyncPass, 'records'> {
  syncId: string;
  sourceCollectionId: string;
  targetCollectionId: string;
  startedAt: string;
  endedAt: string;
  /** Runs into the target in flight when the sync began: it migrated no additions while they ran. */
  runsInFlight: string[];
  /** The run that migrated the additions, when there were any. */
  additionsRun?: Pick<RunSummary, 'workflowId' | 'status' | 'images' | 'matched' | 'dlq' | 'dlqByReason'>;
}
