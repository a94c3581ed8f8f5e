/**
 * Rekognition for the worker's activities and the CLI alike: which errors no retry can cure,
 * request tokens that make a retried call repeat nothing, listing and deleting faces.
 */
import { createHash } from 'node:crypto';
import {
  AccessDeniedException,
  DeleteFacesCommand,
  DeleteUserCommand,
  DisassociateFacesCommand,
  type Face,
  ImageTooLargeException,
  InvalidImageFormatException,
  InvalidParameterException,
  InvalidS3ObjectException,
  ListFacesCommand,
  type RekognitionClient,
  ResourceNotFoundException,
  ServiceQuotaExceededException,
} from '@aws-sdk/client-rekognition';
import { ReasonCode } from '../domain/reasons';

/** ListFaces returns, and DeleteFaces takes, at most 4096 faces a call. */
export const FACES_PER_PAGE = 4096;

/** Every face of a collection, a page of ListFaces at a time. */
export async function* facePages(rekognition: RekognitionClient, CollectionId: string): AsyncGenerator<Face[]> {
  let NextToken: string | undefined;
  do {
    const page = await rekognition.send(new ListFacesCommand({ CollectionId, MaxResults: FACES_PER_PAGE, NextToken }));
    yield page.Faces ?? [];
    NextToken = page.NextToken;
  } while (NextToken);
}

/** Rekognition errors that no retry can cure, and the reason code each becomes. */
export function permanentReason(error: unknown): ReasonCode | undefined {
  if (error instanceof InvalidS3ObjectException) return ReasonCode.ImageNotFound;
  if (error instanceof InvalidImageFormatException) return ReasonCode.InvalidImageFormat;
  if (error instanceof ImageTooLargeException) return ReasonCode.ImageTooLarge;
  if (error instanceof AccessDeniedException) return ReasonCode.AccessDenied;
  if (error instanceof InvalidParameterException) return ReasonCode.InvalidRecord;
  if (error instanceof ServiceQuotaExceededException) return ReasonCode.TargetCollectionFull;
  // The SDK has no class for the protocol's ValidationException; its name is all there is.
  if (error instanceof Error && error.name === 'ValidationException') return ReasonCode.InvalidRecord;
  return undefined;
}

/**
 * A ClientRequestToken that is the same for the same call of the same run, so a retried attempt
 * repeats nothing; Rekognition takes at most 64 characters of [a-zA-Z0-9-_].
 */
export function requestToken(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex');
}

/**
 * Deletes faces from a collection. Rekognition refuses to delete a face a user holds: such a face is
 * first taken from its user, and a user left with no face is deleted (a later users phase creates
 * it again if rows still name it).
 */
export function createFaceDeleter(
  rekognition: RekognitionClient,
): (CollectionId: string, faceIds: string[]) => Promise<void> {
  async function deleteFaces(CollectionId: string, faceIds: string[]): Promise<void> {
    for (let start = 0; start < faceIds.length; start += FACES_PER_PAGE) {
      // Deleting a face already gone reports it as not found and changes nothing, so a retry is safe.
      const { UnsuccessfulFaceDeletions = [] } = await rekognition.send(
        new DeleteFacesCommand({ CollectionId, FaceIds: faceIds.slice(start, start + FACES_PER_PAGE) }),
      );
      const heldByUser = new Map<string, string[]>();
      for (const { FaceId, UserId, Reasons = [] } of UnsuccessfulFaceDeletions) {
        if (FaceId && UserId && Reasons.includes('ASSOCIATED_TO_AN_EXISTING_USER'))
          heldByUser.set(UserId, [...(heldByUser.get(UserId) ?? []), FaceId]);
      }
      for (const [UserId, held] of heldByUser) await deleteUsersFaces(CollectionId, UserId, held);
    }
  }

  async function deleteUsersFaces(CollectionId: string, UserId: string, faceIds: string[]): Promise<void> {
    const token = requestToken(CollectionId, UserId, ...faceIds);
    await rekognition.send(
      new DisassociateFacesCommand({
        CollectionId,
        UserId,
        FaceIds: faceIds,
        ClientRequestToken: requestToken('disassociate', token),
      }),
    );
    await rekognition.send(new DeleteFacesCommand({ CollectionId, FaceIds: faceIds }));
    const { Faces = [] } = await rekognition.send(new ListFacesCommand({ CollectionId, UserId, MaxResults: 1 }));
    if (Faces.length > 0) return;
    try {
      await rekognition.send(
        new DeleteUserCommand({ CollectionId, UserId, ClientRequestToken: requestToken('delete-user', token) }),
      );
    } catch (error) {
      // Deleted by an earlier attempt whose answer was lost.
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
  }

  return deleteFaces;
}
