/**
 * Rekognition: IndexFaces one image into the target collection and decide what became of each of
 * its faces. The activity is idempotent per image: right after IndexFaces answers, the new faces
 * are recorded in S3 under the run, and a retried attempt that finds that record uses it instead
 * of indexing the image again. Only a crash between IndexFaces and that write can leave faces no
 * result names; the run's reconcile phase deletes those.
 */
import { createHash } from 'node:crypto';
import {
  AccessDeniedException,
  AssociateFacesCommand,
  ConflictException,
  CreateUserCommand,
  DeleteFacesCommand,
  ImageTooLargeException,
  IndexFacesCommand,
  InvalidImageFormatException,
  InvalidParameterException,
  InvalidS3ObjectException,
  type QualityFilter,
  type RekognitionClient,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../domain/config';
import { decideOutcome, type ImageOutcome, type IndexedFace } from '../domain/outcomes';
import { ReasonCode } from '../domain/reasons';
import type { ImageRecord } from '../domain/records';

export interface ReindexOptions {
  iouThreshold: number;
  qualityFilter: QualityFilter;
  maxFaces: number | undefined;
  /** What to do with new faces no old face claimed. */
  unmatched: 'delete' | 'keep';
}

export interface ReindexImageInput {
  runId: string;
  recordIndex: number;
  record: ImageRecord;
  sourceCollectionId: string | undefined;
  targetCollectionId: string;
  options: ReindexOptions;
}

export interface MigrateUserInput {
  runId: string;
  targetCollectionId: string;
  userId: string;
  /** New FaceIds of the migrated faces whose old faces belonged to this user. */
  faceIds: string[];
}

export interface MigrateUserResult {
  associated: string[];
  /** Faces Rekognition would not associate, with its reasons (FACE_NOT_FOUND, LOW_MATCH_CONFIDENCE, ...). */
  refused: { FaceId: string; reasons: string[] }[];
}

/** AssociateFaces takes at most 100 faces a call. */
const FACES_PER_ASSOCIATION = 100;

/**
 * A ClientRequestToken that is the same for the same call of the same run, so a retried attempt
 * repeats nothing; Rekognition takes at most 64 characters of [a-zA-Z0-9-_].
 */
export function requestToken(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

export interface ReindexImageResult extends ImageOutcome {
  /** True when an earlier attempt had already indexed the image and its record was reused. */
  reusedEarlierIndexing: boolean;
}

interface IndexingRecord {
  faceModelVersion: string;
  faces: IndexedFace[];
}

/** Rekognition errors that no retry can cure, and the reason code each becomes. */
function permanentReason(error: unknown): ReasonCode | undefined {
  if (error instanceof InvalidS3ObjectException) return ReasonCode.ImageNotFound;
  if (error instanceof InvalidImageFormatException) return ReasonCode.InvalidImageFormat;
  if (error instanceof ImageTooLargeException) return ReasonCode.ImageTooLarge;
  if (error instanceof AccessDeniedException) return ReasonCode.AccessDenied;
  if (error instanceof InvalidParameterException) return ReasonCode.InvalidRecord;
  // The SDK has no class for the protocol's ValidationException; its name is all there is.
  if (error instanceof Error && error.name === 'ValidationException') return ReasonCode.InvalidRecord;
  return undefined;
}

export function createRekognitionActivities({
  rekognition,
  s3,
  config,
}: {
  rekognition: RekognitionClient;
  s3: S3Client;
  config: Pick<Config, 'bucket'>;
}) {
  const markerKey = (runId: string, recordIndex: number) => `runs/${runId}/indexed/${String(recordIndex).padStart(10, '0')}.json`;

  async function earlierIndexing(key: string): Promise<IndexingRecord | undefined> {
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }));
      return JSON.parse((await object.Body?.transformToString()) ?? '') as IndexingRecord;
    } catch (error) {
      if (error instanceof NoSuchKey) return undefined;
      throw error;
    }
  }

  async function indexFaces(input: ReindexImageInput): Promise<IndexingRecord> {
    const { record, options } = input;
    try {
      const response = await rekognition.send(
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
      const reason = permanentReason(error);
      if (reason === undefined) throw error;
      throw ApplicationFailure.create({
        type: reason,
        message: `IndexFaces refused s3://${record.Bucket}/${record.Key}: ${(error as Error).message}`,
        nonRetryable: true,
      });
    }
  }

  return {
    reindexImage: async (input: ReindexImageInput): Promise<ReindexImageResult> => {
      const key = markerKey(input.runId, input.recordIndex);
      const earlier = await earlierIndexing(key);
      const indexing = earlier ?? (await indexFaces(input));
      if (!earlier) {
        await s3.send(new PutObjectCommand({ Bucket: config.bucket, Key: key, Body: JSON.stringify(indexing) }));
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
        // Deleting a face already gone reports it as not found and changes nothing, so a retry is safe.
        await rekognition.send(
          new DeleteFacesCommand({
            CollectionId: input.targetCollectionId,
            FaceIds: outcome.unmatchedNewFaces.map((face) => face.FaceId),
          }),
        );
      }
      return { ...outcome, reusedEarlierIndexing: earlier !== undefined };
    },

    /** Creates the user in the target (or finds it there) and associates its migrated faces. */
    migrateUser: async (input: MigrateUserInput): Promise<MigrateUserResult> => {
      const { targetCollectionId: CollectionId, userId: UserId } = input;
      try {
        await rekognition.send(
          new CreateUserCommand({ CollectionId, UserId, ClientRequestToken: requestToken(input.runId, 'create', UserId) }),
        );
      } catch (error) {
        // Created earlier, by another run or by hand: the user is there, which is what matters.
        if (!(error instanceof ConflictException)) throw error;
      }
      const result: MigrateUserResult = { associated: [], refused: [] };
      for (let start = 0; start < input.faceIds.length; start += FACES_PER_ASSOCIATION) {
        const FaceIds = input.faceIds.slice(start, start + FACES_PER_ASSOCIATION);
        const response = await rekognition
          .send(new AssociateFacesCommand({ CollectionId, UserId, FaceIds, ClientRequestToken: requestToken(input.runId, 'associate', UserId, ...[...FaceIds].sort()) }))
          .catch((error: unknown) => {
            if (!(error instanceof ServiceQuotaExceededException)) throw error;
            throw ApplicationFailure.create({
              type: ReasonCode.UserFaceLimit,
              message: `user ${UserId} would hold more than 100 faces; ${result.associated.length} were associated`,
              nonRetryable: true,
            });
          });
        result.associated.push(...(response.AssociatedFaces ?? []).map((face) => face.FaceId ?? ''));
        result.refused.push(
          ...(response.UnsuccessfulFaceAssociations ?? []).map((failure) => ({ FaceId: failure.FaceId ?? '', reasons: failure.Reasons ?? [] })),
        );
      }
      return result;
    },
  };
}
