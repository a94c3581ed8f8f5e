/**
 * Rekognition: prepare the target collection, IndexFaces one image into it and decide what became
 * of each of its faces, delete the new faces of rows refused as duplicates, and reconcile the
 * target with the ledger at the end of a run.
 *
 * reindexImage is idempotent per image: right after IndexFaces answers, the new faces are recorded
 * in the ledger, and a retried attempt that finds that record uses it instead of indexing the image
 * again. Only a crash between IndexFaces and that write can leave faces no result names; reconcile
 * deletes those.
 */
import {
  AccessDeniedException,
  CreateCollectionCommand,
  DeleteCollectionCommand,
  DeleteFacesCommand,
  DescribeCollectionCommand,
  type Face,
  ImageTooLargeException,
  IndexFacesCommand,
  type IndexFacesCommandOutput,
  InvalidImageFormatException,
  InvalidParameterException,
  InvalidS3ObjectException,
  ListFacesCommand,
  type RekognitionClient,
  ResourceAlreadyExistsException,
  ResourceNotFoundException,
} from '@aws-sdk/client-rekognition';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { activityInfo, heartbeat, log, sleep } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../domain/config';
import { isNewerFaceModel } from '../domain/face-models';
import { decideOutcome, type ImageOutcome } from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import type { ImageRecord } from '../domain/records';
import { REINDEX_IMAGE_ATTEMPT_MS, type ReindexOptions } from '../shared';
import { httpStatusOf } from './aws-clients';
import { createLedger, type IndexingRecord } from './ledger';
import { whileAlive } from './liveness';
import { countMatchedFaces, type IndexFacesOutcome, recordIndexFacesLatency } from './metrics';
import type { DuplicateRow } from './results';

export interface ReindexImageInput {
  runId: string;
  recordIndex: number;
  record: ImageRecord;
  sourceCollectionId: string | undefined;
  targetCollectionId: string;
  options: ReindexOptions;
  /** False when the batch found no indexing of the record in the ledger (ChunkEntry.indexedBefore). */
  indexedBefore?: boolean;
}

export interface ReindexImageResult extends ImageOutcome {
  /** True when an earlier attempt had already indexed the image and its record was reused. */
  reusedEarlierIndexing: boolean;
}

/** Rekognition errors that no retry can cure, and the reason code each becomes. */
export function permanentReason(error: unknown): ReasonCode | undefined {
  if (error instanceof InvalidS3ObjectException) return ReasonCode.ImageNotFound;
  if (error instanceof InvalidImageFormatException) return ReasonCode.InvalidImageFormat;
  if (error instanceof ImageTooLargeException) return ReasonCode.ImageTooLarge;
  if (error instanceof AccessDeniedException) return ReasonCode.AccessDenied;
  if (error instanceof InvalidParameterException) return ReasonCode.InvalidRecord;
  // The SDK has no class for the protocol's ValidationException; its name is all there is.
  if (error instanceof Error && error.name === 'ValidationException') return ReasonCode.InvalidRecord;
  return undefined;
}

/** Errors Rekognition sends when a call goes over the account's quota. */
const THROTTLING_ERRORS = new Set(['ThrottlingException', 'ProvisionedThroughputExceededException', 'LimitExceededException']);

/** What a failed IndexFaces call comes to, for its latency's `outcome` label. */
function indexFacesOutcomeOf(error: unknown): IndexFacesOutcome {
  if (error instanceof ResourceNotFoundException || permanentReason(error) !== undefined) return 'refused';
  return error instanceof Error && THROTTLING_ERRORS.has(error.name) ? 'throttled' : 'error';
}

export interface PrepareTargetInput {
  runId: string;
  targetCollectionId: string;
  sourceCollectionId: string | undefined;
  /** Migrate even when the target's face model is not newer than the source's. */
  force: boolean;
}

export interface PreparedTarget {
  targetFaceModelVersion: string;
  sourceFaceModelVersion: string | undefined;
  /** True when this run created the target collection. */
  created: boolean;
}

export interface ReconcileProgress {
  facesChecked: number;
  orphansDeleted: number;
}

/** ListFaces returns, and DeleteFaces takes, at most 4096 faces a call. */
const FACES_PER_PAGE = 4096;
/** Heartbeats while reconcile waits out its grace: well inside its heartbeat timeout. */
const HEARTBEAT_EVERY_MS = 10_000;

export function createRekognitionActivities({
  rekognition,
  indexFacesClient,
  s3,
  config,
  orphanGraceMs = REINDEX_IMAGE_ATTEMPT_MS + 30_000,
}: {
  rekognition: RekognitionClient;
  /** IndexFaces goes through a client of its own that does not retry (AwsClients.indexFaces). */
  indexFacesClient: RekognitionClient;
  s3: S3Client;
  config: Pick<Config, 'bucket'>;
  /**
   * How long reconcile waits before deleting a face the ledger does not know: another run indexing
   * into the same target records its faces within one reindexImage attempt.
   */
  orphanGraceMs?: number;
}) {
  const ledger = createLedger(s3, config.bucket);

  async function faceModelVersion(CollectionId: string): Promise<string | undefined> {
    try {
      const { FaceModelVersion } = await rekognition.send(new DescribeCollectionCommand({ CollectionId }));
      return FaceModelVersion ?? '';
    } catch (error) {
      if (error instanceof ResourceNotFoundException) return undefined;
      throw deniedForGood(error, CollectionId);
    }
  }

  /** Missing permissions do not come back on a retry: the run fails at once, saying which. */
  function deniedForGood(error: unknown, CollectionId: string): unknown {
    if (!(error instanceof AccessDeniedException)) return error;
    return ApplicationFailure.create({
      type: ReasonCode.AccessDenied,
      message: `these credentials may not use collection ${CollectionId}: ${error.message}`,
      nonRetryable: true,
    });
  }

  async function createCollection(CollectionId: string): Promise<boolean> {
    try {
      await rekognition.send(new CreateCollectionCommand({ CollectionId }));
      return true;
    } catch (error) {
      // A retried attempt, or a concurrent run, created it first.
      if (error instanceof ResourceAlreadyExistsException) return false;
      throw deniedForGood(error, CollectionId);
    }
  }

  /**
   * Reconcile deletes every face of the target the ledger does not know, so a run may only write
   * into a collection this tool created, or one that was empty when a run first took it.
   */
  async function claimTarget(runId: string, CollectionId: string, created: boolean): Promise<void> {
    if (!created && (await ledger.ownsCollection(CollectionId))) return;
    if (!created) {
      const { Faces = [] } = await rekognition.send(new ListFacesCommand({ CollectionId, MaxResults: 1 }));
      if (Faces.length > 0) {
        throw ApplicationFailure.create({
          type: ReasonCode.TargetNotOwned,
          message: `the target collection ${CollectionId} holds faces this tool did not index, which the run's reconcile phase would delete; migrate into a new collection`,
          nonRetryable: true,
        });
      }
    }
    await ledger.claimCollection(CollectionId, runId);
  }

  /**
   * IndexFaces calls an empty object an invalid format; the operator has to know it is empty. An
   * object S3 will not describe is not called empty: the verdict stands.
   */
  async function isEmptyObject({ Bucket, Key }: ImageRecord): Promise<boolean> {
    try {
      const { ContentLength } = await s3.send(new HeadObjectCommand({ Bucket, Key }));
      return ContentLength === 0;
    } catch (error) {
      const status = httpStatusOf(error);
      if (status !== undefined && status < 500) return false;
      throw error;
    }
  }

  /** One IndexFaces call, its latency recorded whatever it answers. */
  async function sendIndexFaces(command: IndexFacesCommand): Promise<IndexFacesCommandOutput> {
    const started = performance.now();
    try {
      const response = await indexFacesClient.send(command);
      recordIndexFacesLatency(performance.now() - started, 'ok');
      return response;
    } catch (error) {
      recordIndexFacesLatency(performance.now() - started, indexFacesOutcomeOf(error));
      throw error;
    }
  }

  async function indexFaces(input: ReindexImageInput): Promise<IndexingRecord> {
    const { record, options } = input;
    try {
      const response = await sendIndexFaces(
        new IndexFacesCommand({
          CollectionId: input.targetCollectionId,
          Image: { S3Object: { Bucket: record.Bucket, Name: record.Key } },
          ExternalImageId: record.ExternalImageId,
          QualityFilter: options.qualityFilter,
          MaxFaces: options.maxFaces,
          DetectionAttributes: ['DEFAULT'],
        }),
      );
      const faces = (response.FaceRecords ?? []).flatMap(({ Face }) =>
        Face?.FaceId && Face.ImageId && Face.BoundingBox
          ? [
              {
                FaceId: Face.FaceId,
                ImageId: Face.ImageId,
                BoundingBox: {
                  Width: Face.BoundingBox.Width ?? 0,
                  Height: Face.BoundingBox.Height ?? 0,
                  Left: Face.BoundingBox.Left ?? 0,
                  Top: Face.BoundingBox.Top ?? 0,
                },
              },
            ]
          : [],
      );
      return { faceModelVersion: response.FaceModelVersion ?? '', faces };
    } catch (error) {
      if (error instanceof ResourceNotFoundException) {
        throw ApplicationFailure.create({
          type: ReasonCode.TargetCollectionNotFound,
          message: `the target collection ${input.targetCollectionId} does not exist`,
          nonRetryable: true,
        });
      }
      let reason = permanentReason(error);
      if (reason === undefined) throw error;
      const empty = reason === ReasonCode.InvalidImageFormat && (await isEmptyObject(record));
      if (empty) reason = ReasonCode.ImageEmpty;
      throw ApplicationFailure.create({
        type: reason,
        message: `IndexFaces refused s3://${record.Bucket}/${record.Key}: ${(error as Error).message}${empty ? '; the object is empty (0 bytes)' : ''}`,
        nonRetryable: true,
      });
    }
  }

  async function deleteFaces(CollectionId: string, faceIds: string[]): Promise<void> {
    for (let start = 0; start < faceIds.length; start += FACES_PER_PAGE) {
      // Deleting a face already gone reports it as not found and changes nothing, so a retry is safe.
      await rekognition.send(new DeleteFacesCommand({ CollectionId, FaceIds: faceIds.slice(start, start + FACES_PER_PAGE) }));
    }
  }

  /**
   * The indexing of this image: the one an earlier attempt recorded, or a new one. When another
   * attempt recorded its indexing while this one was indexing, this one's faces are surplus.
   */
  async function indexOnce(input: ReindexImageInput): Promise<{ indexing: IndexingRecord; reused: boolean }> {
    const target = input.targetCollectionId;
    // A first attempt whose batch found no indexing calls IndexFaces straight away; the conditional
    // write below still catches an indexing recorded since.
    const mayBeIndexed = input.indexedBefore !== false || activityInfo().attempt > 1;
    const earlier = mayBeIndexed ? await ledger.findIndexing(target, input.record, input.options.indexingScope) : undefined;
    if (earlier) return { indexing: earlier, reused: true };
    const indexing = await indexFaces(input);
    if (await ledger.recordIndexing(target, input.record, input.options.indexingScope, indexing)) return { indexing, reused: false };
    const winner = await ledger.findIndexing(target, input.record, input.options.indexingScope);
    if (!winner) throw new Error(`the indexing of s3://${input.record.Bucket}/${input.record.Key} was recorded but cannot be read`);
    // The record may be this attempt's own: the SDK retried a write whose answer was lost.
    const recorded = new Set(winner.faces.map((face) => face.FaceId));
    const surplus = indexing.faces.map((face) => face.FaceId).filter((faceId) => !recorded.has(faceId));
    await deleteFaces(target, surplus);
    return { indexing: winner, reused: surplus.length > 0 };
  }

  /** Indexes the image once across attempts, records its faces in the ledger, and decides what became of each. */
  async function reindexImageOnce(input: ReindexImageInput): Promise<ReindexImageResult> {
    const { indexing, reused } = await indexOnce(input);
    // The image entries let reconcile tell this run's faces from crash leftovers; written on
    // every attempt because a crash may have come between the indexing record and them.
    for (const imageId of new Set(indexing.faces.map((face) => face.ImageId))) {
      await ledger.recordImage(input.targetCollectionId, imageId, { runId: input.runId, recordIndex: input.recordIndex });
    }
    const outcome = decideOutcome(input.record, indexing.faces, {
      runId: input.runId,
      iouThreshold: input.options.iouThreshold,
      sourceCollectionId: input.sourceCollectionId,
      targetCollectionId: input.targetCollectionId,
      faceModelVersion: indexing.faceModelVersion,
      migratedAt: new Date().toISOString(),
    });
    if (input.options.unmatched === 'delete' && outcome.unmatchedNewFaces.length > 0) {
      await deleteFaces(
        input.targetCollectionId,
        outcome.unmatchedNewFaces.map((face) => face.FaceId),
      );
    }
    countMatchedFaces(outcome.results.length);
    return { ...outcome, reusedEarlierIndexing: reused };
  }

  return {
    /**
     * Makes sure the target collection exists, creating it on the service's newest face model, and
     * refuses a target whose model is not newer than the source's unless forced.
     */
    prepareTarget: async (input: PrepareTargetInput): Promise<PreparedTarget> => {
      const { targetCollectionId, sourceCollectionId } = input;
      let sourceFaceModelVersion: string | undefined;
      if (sourceCollectionId !== undefined) {
        sourceFaceModelVersion = await faceModelVersion(sourceCollectionId);
        if (sourceFaceModelVersion === undefined) {
          throw ApplicationFailure.create({
            type: ReasonCode.SourceCollectionNotFound,
            message: `the source collection ${sourceCollectionId} does not exist`,
            nonRetryable: true,
          });
        }
      }
      let targetFaceModelVersion = await faceModelVersion(targetCollectionId);
      const created = targetFaceModelVersion === undefined && (await createCollection(targetCollectionId));
      targetFaceModelVersion ??= (await faceModelVersion(targetCollectionId)) ?? '';
      if (sourceFaceModelVersion !== undefined && !input.force && !isNewerFaceModel(targetFaceModelVersion, sourceFaceModelVersion)) {
        // A collection this run made only to refuse it would be litter.
        if (created) await rekognition.send(new DeleteCollectionCommand({ CollectionId: targetCollectionId }));
        throw ApplicationFailure.create({
          type: ReasonCode.TargetModelNotNewer,
          message: `the target collection ${targetCollectionId} uses face model ${targetFaceModelVersion}, not newer than ${sourceFaceModelVersion} of ${sourceCollectionId}; pass force to migrate anyway`,
          nonRetryable: true,
        });
      }
      await claimTarget(input.runId, targetCollectionId, created);
      return { targetFaceModelVersion, sourceFaceModelVersion, created };
    },

    reindexImage: (input: ReindexImageInput): Promise<ReindexImageResult> => whileAlive(() => reindexImageOnce(input)),

    /**
     * Deletes every face of the target whose image the ledger does not know: faces indexed by an
     * attempt that crashed before recording them. A face of another run indexing into the same
     * target right now is not known yet either, so such faces are looked up again after the grace
     * and only those still unknown go. Pages are keyed by FaceId, so deleting while paging skips
     * nothing; the page token is heartbeated so a retry resumes.
     */
    reconcile: async (targetCollectionId: string): Promise<ReconcileProgress> => {
      const resumed = activityInfo().heartbeatDetails as (ReconcileProgress & { nextToken?: string }) | undefined;
      const progress: ReconcileProgress = { facesChecked: resumed?.facesChecked ?? 0, orphansDeleted: resumed?.orphansDeleted ?? 0 };
      let nextToken = resumed?.nextToken;
      const unknownOf = async (faces: Face[]): Promise<Face[]> => {
        const imageIds = [...new Set(faces.map((face) => face.ImageId ?? ''))];
        const found = await ledger.hasImages(targetCollectionId, imageIds);
        const known = new Set(imageIds.filter((_, i) => found[i]));
        return faces.filter((face) => !known.has(face.ImageId ?? ''));
      };
      do {
        const page = await rekognition.send(
          new ListFacesCommand({ CollectionId: targetCollectionId, MaxResults: FACES_PER_PAGE, NextToken: nextToken }),
        );
        const faces = page.Faces ?? [];
        let unknown = await unknownOf(faces);
        if (unknown.length > 0) {
          for (let waited = 0; waited < orphanGraceMs; waited += HEARTBEAT_EVERY_MS) {
            heartbeat({ ...progress, nextToken });
            await sleep(Math.min(HEARTBEAT_EVERY_MS, orphanGraceMs - waited));
          }
          unknown = await unknownOf(unknown);
        }
        const orphans = unknown.map((face) => face.FaceId ?? '');
        if (orphans.length > 0) {
          log.warn('Deleting faces of the target that no recorded indexing made', { targetCollectionId, orphans: orphans.length });
          await deleteFaces(targetCollectionId, orphans);
        }
        progress.facesChecked += faces.length;
        progress.orphansDeleted += orphans.length;
        nextToken = page.NextToken;
        heartbeat({ ...progress, nextToken });
      } while (nextToken);
      return progress;
    },

    /**
     * Deletes the new faces of rows the results table refused as duplicates (see drainResults), so
     * the target holds only faces a row names. A collection that is gone holds no face to delete.
     */
    deleteDuplicateFaces: async (duplicates: DuplicateRow[]): Promise<void> => {
      const byCollection = new Map<string, string[]>();
      for (const { row, surplusFaceId } of duplicates) {
        if (surplusFaceId !== undefined) byCollection.set(row.CollectionId, [...(byCollection.get(row.CollectionId) ?? []), surplusFaceId]);
      }
      for (const [collectionId, faceIds] of byCollection) {
        try {
          await deleteFaces(collectionId, faceIds);
        } catch (error) {
          if (!(error instanceof ResourceNotFoundException)) throw error;
        }
      }
    },
  };
}
