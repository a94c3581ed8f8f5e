/**
 * `reindex forget`: one person taken out of every copy this tool made of them. The person is named
 * by FaceIds (old or new) or by a UserId; a UserId is unique only within a collection, so it counts
 * only in rows of the target and in runs that indexed into it, never across collections.
 */
import type { ResultRow, ReviewItem } from './outcomes';

export interface Person {
  /** The person's faces in old collections, as records name them. */
  oldFaceIds: ReadonlySet<string>;
  /** The person's faces in the target. */
  newFaceIds: ReadonlySet<string>;
  /** The person's user in the target. */
  userId: string | undefined;
}

/** A face as a record, a chunk or a review item holds it: fields are checked, since any of them may be malformed. */
interface FaceLike {
  FaceId?: unknown;
  UserId?: unknown;
}

/** Whether a face of a record or review item is the person's; `ofTarget`: it comes from a run into the target. */
export function isPersonsFace(person: Person, face: FaceLike | null | undefined, ofTarget: boolean): boolean {
  if (!face) return false;
  if (typeof face.FaceId === 'string' && person.oldFaceIds.has(face.FaceId)) return true;
  return ofTarget && person.userId !== undefined && face.UserId === person.userId;
}

/** What is left of a record once the person's faces are out: the record, or undefined when it held only theirs. */
export function recordWithoutPerson(
  record: unknown,
  person: Person,
  ofTarget: boolean,
): { record: unknown; removed: number } {
  const faces = (record as { Faces?: unknown } | null | undefined)?.Faces;
  if (!Array.isArray(faces)) return { record, removed: 0 };
  const kept = faces.filter((face) => !isPersonsFace(person, face as FaceLike, ofTarget));
  const removed = faces.length - kept.length;
  if (removed === 0) return { record, removed };
  return { record: kept.length === 0 ? undefined : { ...(record as object), Faces: kept }, removed };
}

/**
 * Whether a review-DLQ message speaks of the person:
 * its face, a refused record's face ids, or the small record the users phase sends.
 */
export function isPersonsReviewItem(item: ReviewItem, person: Person, ofTarget: boolean): boolean {
  if (isPersonsFace(person, item.face, ofTarget)) return true;
  if (item.faceIds?.some((faceId) => person.oldFaceIds.has(faceId))) return true;
  const record = item.record as
    { OldFaceId?: unknown; FaceId?: unknown; UserId?: unknown; Faces?: unknown } | null | undefined;
  if (!record || typeof record !== 'object') return false;
  if (typeof record.OldFaceId === 'string' && person.oldFaceIds.has(record.OldFaceId)) return true;
  if (typeof record.FaceId === 'string' && person.newFaceIds.has(record.FaceId)) return true;
  if (ofTarget && person.userId !== undefined && record.UserId === person.userId) return true;
  return recordWithoutPerson(record, person, ofTarget).removed > 0;
}

/** Whether a result row is the person's: rows name their target, so a UserId counts only in the target's. */
export function isPersonsRow(
  row: Pick<ResultRow, 'OldFaceId' | 'FaceId' | 'CollectionId'> & { UserId?: string | undefined },
  person: Person,
  targetCollectionId: string,
): boolean {
  if (row.CollectionId !== targetCollectionId) return false;
  return (
    person.oldFaceIds.has(row.OldFaceId) ||
    person.newFaceIds.has(row.FaceId) ||
    (person.userId !== undefined && row.UserId === person.userId)
  );
}
