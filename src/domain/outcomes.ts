/**
 * What becomes of each face of one image once the new model has indexed it (docs/architecture.md, "Outcomes"):
 * a matched old face gives a result row, an unmatched old face a review item with its reason, and a
 * new face nobody had is left for the caller to delete or keep.
 */
import { type BoundingBox, iou, matchFaces } from './matching';
import { addReasonCounts, ReasonCode, type ReasonCounts } from './reasons';
import type { ImageRecord, RecordFace } from './records';

/** A face IndexFaces put into the target collection. */
export interface IndexedFace {
  FaceId: string;
  ImageId: string;
  BoundingBox: BoundingBox;
}

/** A face IndexFaces found but left out (UnindexedFaces), with the service's reasons. */
export interface FilteredFace {
  BoundingBox: BoundingBox;
  reasons: string[];
}

export interface RunContext {
  runId: string;
  iouThreshold: number;
  sourceCollectionId: string | undefined;
  targetCollectionId: string;
  faceModelVersion: string;
  /** ISO 8601; passed in so the outcome is a pure function of its inputs. */
  migratedAt: string;
  /** The record's position in its records file. */
  recordIndex: number;
  /** Days after migratedAt that the row expires from the results table; absent, it never does. */
  rowsExpireDays?: number;
}

const DAY_SECONDS = 24 * 60 * 60;

/** The row's time to live: `days` after it was decided, in the seconds since the epoch DynamoDB counts in. */
export function expiresAt(migratedAt: string, days: number): number {
  return Math.floor(Date.parse(migratedAt) / 1000) + Math.round(days * DAY_SECONDS);
}

/** One row of the results table, keyed by OldFaceId. */
export interface ResultRow {
  OldFaceId: string;
  FaceId: string;
  OldImageId: string | undefined;
  ImageId: string;
  ExternalImageId: string | undefined;
  UserId: string | undefined;
  Bucket: string;
  Key: string;
  BoundingBox: BoundingBox;
  OldBoundingBox: BoundingBox;
  IoU: number;
  SourceCollectionId: string | undefined;
  CollectionId: string;
  FaceModelVersion: string;
  RunId: string;
  MigratedAt: string;
  /**
   * The position in the records file of the record that decided the row: a retry of that record
   * sends the row again, decided anew, and the drain knows it for the same row. Absent in rows
   * of versions before it.
   */
  RecordIndex?: number;
  /** When DynamoDB's time to live deletes the row, in seconds since the epoch; absent, never. */
  ExpiresAt?: number;
}

/**
 * IndexFaces returns at most 100 faces an image (its MaxFaces limit); the cap keeps a review
 * message far below SQS's 256 KiB whatever an image holds.
 */
export const MAX_NEW_FACES_IN_REVIEW = 100;

/** A face the new model found, as a review item shows it. */
export interface NewFaceSeen {
  BoundingBox: BoundingBox;
  IoU: number;
}

/** One message of the review DLQ: enough to find the image and the face and to know why. */
export interface ReviewItem {
  reason: ReasonCode;
  detail: string;
  runId: string;
  /** Absent when the record was too broken to name its image. */
  Bucket: string | undefined;
  Key: string | undefined;
  ExternalImageId: string | undefined;
  face: RecordFace | undefined;
  /**
   * For IOU_BELOW_THRESHOLD: what the new model found in the image instead, each box with its IoU
   * against this old face, best first, so a reviewer sees both without calling Rekognition again.
   */
  newFaces?: NewFaceSeen[];
  /** For a refused record: its position in the records file. */
  recordIndex?: number;
  /**
   * For a refused record: the old FaceIds it names (REFUSED_FACE_IDS at most), so a fixed copy of
   * it can be redriven; nothing else of the record is kept.
   */
  faceIds?: string[];
  /**
   * The record as it was:
   * refused records sent before they were kept as their face ids, and the users phase's small ones.
   */
  record?: unknown;
}

export interface ImageOutcome {
  results: ResultRow[];
  review: ReviewItem[];
  /** New faces no old face claimed: deleted from the target by default. */
  unmatchedNewFaces: IndexedFace[];
}

/** An image's outcome counted, once its rows and review items are on their way: what a batch keeps. */
export interface ImageTally {
  matched: number;
  /** The image's review items by reason: its old faces that were not migrated. */
  reviewByReason: ReasonCounts;
  unmatchedNew: number;
  reusedEarlierIndexing: boolean;
}

/**
 * A failed batch's review items: every face of its records, BATCH_FAILED with the batch's error,
 * since which of its images were migrated is not known.
 */
export function batchFailedReview(
  entries: { index: number; record: ImageRecord }[],
  runId: string,
  detail: string,
): ReviewItem[] {
  return entries.flatMap(({ index, record }) =>
    record.Faces.map<ReviewItem>((face) => ({
      reason: ReasonCode.BatchFailed,
      detail,
      runId,
      Bucket: record.Bucket,
      Key: record.Key,
      ExternalImageId: record.ExternalImageId,
      face,
      recordIndex: index,
    })),
  );
}

export function tallyOf(outcome: ImageOutcome & { reusedEarlierIndexing: boolean }): ImageTally {
  const reviewByReason: ReasonCounts = {};
  for (const item of outcome.review) addReasonCounts(reviewByReason, item.reason);
  return {
    matched: outcome.results.length,
    reviewByReason,
    unmatchedNew: outcome.unmatchedNewFaces.length,
    reusedEarlierIndexing: outcome.reusedEarlierIndexing,
  };
}

function reviewItem(
  record: ImageRecord,
  context: RunContext,
  reason: ReasonCode,
  detail: string,
  face?: RecordFace,
): ReviewItem {
  return {
    reason,
    detail,
    runId: context.runId,
    Bucket: record.Bucket,
    Key: record.Key,
    ExternalImageId: record.ExternalImageId,
    face,
  };
}

function newFacesSeen(oldFace: RecordFace, indexed: IndexedFace[]): NewFaceSeen[] {
  return indexed
    .map((face) => ({ BoundingBox: face.BoundingBox, IoU: iou(oldFace.BoundingBoxes, face.BoundingBox) }))
    .sort((a, b) => b.IoU - a.IoU)
    .slice(0, MAX_NEW_FACES_IN_REVIEW);
}

/** The filtered face overlapping the old face most, when it overlaps at the threshold or more. */
function filteredAt(
  oldFace: RecordFace,
  filtered: FilteredFace[],
  threshold: number,
): { face: FilteredFace; iou: number } | undefined {
  let best: { face: FilteredFace; iou: number } | undefined;
  for (const face of filtered) {
    const overlap = iou(oldFace.BoundingBoxes, face.BoundingBox);
    if (overlap >= threshold && overlap > (best?.iou ?? 0)) best = { face, iou: overlap };
  }
  return best;
}

export function decideOutcome(
  record: ImageRecord,
  indexed: IndexedFace[],
  context: RunContext,
  filtered: FilteredFace[] = [],
): ImageOutcome {
  const pairs = matchFaces(
    record.Faces.map((face) => face.BoundingBoxes),
    indexed.map((face) => face.BoundingBox),
    context.iouThreshold,
  );
  const partnerOf = new Map(pairs.map((pair) => [pair.oldIndex, pair]));
  const claimed = new Set(pairs.map((pair) => pair.newIndex));
  const results: ResultRow[] = [];
  const review: ReviewItem[] = [];
  record.Faces.forEach((oldFace, oldIndex) => {
    const pair = partnerOf.get(oldIndex);
    const newFace = pair === undefined ? undefined : indexed[pair.newIndex];
    if (pair === undefined || newFace === undefined) {
      const left = filteredAt(oldFace, filtered, context.iouThreshold);
      if (left) {
        review.push(
          reviewItem(
            record,
            context,
            ReasonCode.FaceFiltered,
            `IndexFaces found a face here (IoU ${left.iou.toFixed(3)}) but left it out: ${left.face.reasons.join(', ')}; another --quality-filter or a higher --max-faces would index it`,
            oldFace,
          ),
        );
        return;
      }
      if (indexed.length === 0) {
        review.push(
          reviewItem(
            record,
            context,
            ReasonCode.NoFaceDetected,
            'the new face model found no face in the image',
            oldFace,
          ),
        );
        return;
      }
      const newFaces = newFacesSeen(oldFace, indexed);
      const best = newFaces[0]?.IoU ?? 0;
      review.push({
        ...reviewItem(
          record,
          context,
          ReasonCode.IouBelowThreshold,
          `no new face overlaps this one with IoU ${context.iouThreshold} or more that another old face did not match better; best IoU ${best.toFixed(3)}`,
          oldFace,
        ),
        newFaces,
      });
      return;
    }
    results.push({
      OldFaceId: oldFace.FaceId,
      FaceId: newFace.FaceId,
      OldImageId: oldFace.ImageId,
      ImageId: newFace.ImageId,
      ExternalImageId: record.ExternalImageId,
      UserId: oldFace.UserId,
      Bucket: record.Bucket,
      Key: record.Key,
      BoundingBox: newFace.BoundingBox,
      OldBoundingBox: oldFace.BoundingBoxes,
      IoU: pair.iou,
      SourceCollectionId: context.sourceCollectionId,
      CollectionId: context.targetCollectionId,
      FaceModelVersion: context.faceModelVersion,
      RunId: context.runId,
      MigratedAt: context.migratedAt,
      RecordIndex: context.recordIndex,
      ...(context.rowsExpireDays === undefined
        ? {}
        : { ExpiresAt: expiresAt(context.migratedAt, context.rowsExpireDays) }),
    });
  });
  return { results, review, unmatchedNewFaces: indexed.filter((_, newIndex) => !claimed.has(newIndex)) };
}

/**
 * The outcome once faces another record holds are taken out: IndexFaces gives two records of one
 * image (same bytes, same ExternalImageId) the same faces, and only the record that claimed a face
 * first may keep or delete it. An old face matched to a held face goes to review instead of a row.
 */
export function withoutHeldFaces(
  outcome: ImageOutcome,
  held: ReadonlySet<string>,
  record: ImageRecord,
  context: RunContext,
): ImageOutcome {
  if (held.size === 0) return outcome;
  const taken = outcome.results.filter((row) => held.has(row.FaceId));
  return {
    results: outcome.results.filter((row) => !held.has(row.FaceId)),
    review: [
      ...outcome.review,
      ...taken.map((row) =>
        reviewItem(
          record,
          context,
          ReasonCode.NewFaceTaken,
          `IndexFaces answered with new face ${row.FaceId}, which another record of the same image (same bytes, same ExternalImageId) holds already; the records file names this image twice`,
          record.Faces.find((face) => face.FaceId === row.OldFaceId),
        ),
      ),
    ],
    unmatchedNewFaces: outcome.unmatchedNewFaces.filter((face) => !held.has(face.FaceId)),
  };
}

/** What the ledger held for a record before this indexing (CurrentIndexing, its pure part). */
export interface EarlierFaces {
  indexing: string;
  /** Every FaceId an indexing of the record was given. */
  faces: string[];
}

/**
 * A row an earlier run wrote for an old face that this run sends to review: it names a face this
 * run deleted, so it goes, but only while it still names one of them.
 */
export interface RowRetraction {
  OldFaceId: string;
  CollectionId: string;
  FaceIds: string[];
}

export interface SettledFaces {
  /** The faces the record keeps: those its rows name, and with --unmatched keep those nobody had. */
  kept: string[];
  /** Every face any indexing of the record was given, this one's included, but those another record holds. */
  faces: string[];
  /** The record's faces the target must no longer hold. */
  doomed: string[];
  /** Rows of earlier runs to take back: only when an indexing under other settings held faces now doomed. */
  retractions: RowRetraction[];
}

/**
 * Which of a record's faces the target keeps once this indexing decided them, which go, and which
 * earlier rows go with them.
 */
export function settleFaces(
  outcome: ImageOutcome,
  {
    indexing,
    indexed,
    held,
    unmatched,
    targetCollectionId,
  }: {
    indexing: string;
    indexed: IndexedFace[];
    held: ReadonlySet<string>;
    unmatched: 'delete' | 'keep';
    targetCollectionId: string;
  },
  earlier: EarlierFaces | undefined,
): SettledFaces {
  const kept = [
    ...outcome.results.map((row) => row.FaceId),
    ...(unmatched === 'keep' ? outcome.unmatchedNewFaces.map((face) => face.FaceId) : []),
  ];
  const keeps = new Set(kept);
  const ours = indexed.map((face) => face.FaceId).filter((faceId) => !held.has(faceId));
  const faces = [...new Set([...(earlier?.faces ?? []), ...ours])];
  const doomed = faces.filter((faceId) => !keeps.has(faceId));
  const earlierFaces = new Set(earlier?.faces ?? []);
  const superseded =
    earlier === undefined || earlier.indexing === indexing ? [] : doomed.filter((faceId) => earlierFaces.has(faceId));
  const retractions =
    superseded.length === 0
      ? []
      : outcome.review.flatMap((item) =>
          item.face ? [{ OldFaceId: item.face.FaceId, CollectionId: targetCollectionId, FaceIds: superseded }] : [],
        );
  return { kept, faces, doomed, retractions };
}
