/**
 * Old faces deleted from the source collection after the records file was written: a person asked
 * to be forgotten. The source, not the file, says which faces still exist and which user each
 * belongs to; an image holding a deleted face is not indexed, since indexing it would make that
 * person's face again.
 */
import type { ImageOutcome, ReviewItem } from './outcomes';
import { ReasonCode } from './reasons';
import type { ImageRecord } from './records';

/** What the source holds of the faces asked about: FaceId to its UserId (undefined: no user). */
export type SourceFaces = ReadonlyMap<string, string | undefined>;

/**
 * The record as the source has it now: each face's UserId taken from the source, not from the
 * file; and the old faces the source no longer holds.
 */
export function checkedAgainstSource(
  record: ImageRecord,
  source: SourceFaces,
): { record: ImageRecord; gone: string[] } {
  const gone = record.Faces.filter((face) => !source.has(face.FaceId)).map((face) => face.FaceId);
  const Faces = record.Faces.map(({ UserId: _fromFile, ...face }) => {
    const UserId = source.get(face.FaceId);
    return UserId === undefined ? face : { ...face, UserId };
  });
  return { record: { ...record, Faces }, gone };
}

/** The outcome of an image holding deleted faces, which is not indexed: each of its faces to review. */
export function erasureOutcome(
  record: ImageRecord,
  gone: readonly string[],
  runId: string,
  recordIndex: number,
): ImageOutcome {
  const erased = new Set(gone);
  const review = record.Faces.map<ReviewItem>((face) => ({
    reason: erased.has(face.FaceId) ? ReasonCode.OldFaceDeleted : ReasonCode.ImageHoldsDeletedFace,
    detail: erased.has(face.FaceId)
      ? 'the old face is no longer in the source collection; its image was not indexed, so the face was not made again'
      : `another old face of this image (${gone.join(', ')}) is no longer in the source collection; the image was not indexed, so that face was not made again`,
    runId,
    Bucket: record.Bucket,
    Key: record.Key,
    ExternalImageId: record.ExternalImageId,
    face,
    recordIndex,
  }));
  return { results: [], review, unmatchedNewFaces: [] };
}
