/**
 * Why a face or a record could not be migrated: the reason code on every review-DLQ message and in
 * every summary, and the type of the non-retryable ApplicationFailure a permanent error becomes.
 */
export enum ReasonCode {
  /** The records file itself cannot be read: it does not exist or the worker may not read it. */
  ManifestNotFound = 'MANIFEST_NOT_FOUND',
  /** The records file was replaced while the run read it: the run reads one version of it, from start to end. */
  ManifestChanged = 'MANIFEST_CHANGED',
  /** The collection the run indexes into is gone: no image of the run can succeed. */
  TargetCollectionNotFound = 'TARGET_COLLECTION_NOT_FOUND',
  /**
   * The target holds as many faces as a collection may (ServiceQuotaExceededException):
   * no image of the run can succeed.
   */
  TargetCollectionFull = 'TARGET_COLLECTION_FULL',
  /** The old collection named with --source does not exist. */
  SourceCollectionNotFound = 'SOURCE_COLLECTION_NOT_FOUND',
  /** The target's face model is not newer than the source's: the run would gain nothing. */
  TargetModelNotNewer = 'TARGET_MODEL_NOT_NEWER',
  /** The target holds faces this tool did not index: reconcile would delete them, so the run refuses it. */
  TargetNotOwned = 'TARGET_NOT_OWNED',
  /** A plan names no collection, names a target twice, or would run no collection at once. */
  InvalidPlan = 'INVALID_PLAN',
  /** A run's settings would keep it from ever ending (no batch or no image in flight) or are out of range. */
  InvalidRunInput = 'INVALID_RUN_INPUT',
  /**
   * The record does not match the records-file schema, or cannot be read as a record: not valid
   * JSON, not UTF-8, over MAX_RECORD_BYTES (records.ts); or the place where the records file breaks
   * off (a truncated array), the detail saying where.
   */
  InvalidRecord = 'INVALID_RECORD',
  /** A FaceId appears twice, within one record or across the file. */
  DuplicateFaceId = 'DUPLICATE_FACE_ID',
  ImageNotFound = 'IMAGE_NOT_FOUND',
  AccessDenied = 'ACCESS_DENIED',
  InvalidImageFormat = 'INVALID_IMAGE_FORMAT',
  ImageTooLarge = 'IMAGE_TOO_LARGE',
  /**
   * The image object holds no bytes
   * (IndexFaces calls it an invalid format; the run and `reindex validate` say it is empty).
   */
  ImageEmpty = 'IMAGE_EMPTY',
  /** The image is under Rekognition's smallest size (80 pixels a side), which IndexFaces refuses. */
  ImageTooSmall = 'IMAGE_TOO_SMALL',
  /**
   * The new model found a face where this old face is, but IndexFaces left it out for the reasons it
   * gave (LOW_SHARPNESS, EXCEEDS_MAX_FACES, ...): another --quality-filter or a higher --max-faces
   * would index it.
   */
  FaceFiltered = 'FACE_FILTERED',
  /**
   * IndexFaces answered with a new face another record already holds: the records file names the
   * same image (same bytes, same ExternalImageId) twice, and the real service gives both the same faces.
   */
  NewFaceTaken = 'NEW_FACE_TAKEN',
  /**
   * The image failed with an error no retry cleared (not throttling, not a refusal of the image)
   * for as long as the run retries one (--retry-minutes); the detail carries the last error.
   */
  RetriesExhausted = 'RETRIES_EXHAUSTED',
  /**
   * The batch holding the record failed as a whole (its chunk could not be read or its outcomes
   * not sent) after its retries; the record may or may not have been migrated, and a redrive of it
   * reuses whatever was indexed.
   */
  BatchFailed = 'BATCH_FAILED',
  /**
   * The old face is no longer in the source collection: deleted after the records file was written
   * (a person asked to be forgotten). Its image is not indexed, so the face is not made again.
   */
  OldFaceDeleted = 'OLD_FACE_DELETED',
  /** Another old face of the same image is no longer in the source collection: the image is not indexed. */
  ImageHoldsDeletedFace = 'IMAGE_HOLDS_DELETED_FACE',
  /** The new model found no face in the image. */
  NoFaceDetected = 'NO_FACE_DETECTED',
  /** The new model found faces, but none overlaps this old face enough. */
  IouBelowThreshold = 'IOU_BELOW_THRESHOLD',
  /** SQS refused a message as the sender's fault (too large, malformed): resending cannot help. */
  MessageRefused = 'MESSAGE_REFUSED',
  /** A user would hold more than the 100 faces Rekognition allows. */
  UserFaceLimit = 'USER_FACE_LIMIT',
  /** AssociateFaces would not put the face in its user (FACE_NOT_FOUND, LOW_MATCH_CONFIDENCE, ...). */
  UserAssociationRefused = 'USER_ASSOCIATION_REFUSED',
}

/** How many DLQ messages each reason sent. */
export type ReasonCounts = Partial<Record<ReasonCode, number>>;

/** Adds `from` into `into`: one reason counted once, or a whole tally merged. */
export function addReasonCounts(into: ReasonCounts, from: ReasonCounts | ReasonCode): void {
  const counts: ReasonCounts = typeof from === 'string' ? { [from]: 1 } : from;
  for (const [reason, count] of Object.entries(counts) as [ReasonCode, number][])
    into[reason] = (into[reason] ?? 0) + count;
}
