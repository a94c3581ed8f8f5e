/**
 * Turning review-DLQ messages back into records a new run can take. Faces of one image, sent as one
 * message each, become one record again; a refused record is kept as its face ids only, so only a
 * fixed copy goes back (one sent whole, before, goes back as it was sent). Faces the users phase
 * refused were migrated already: a new run would index them a second time, so they are not
 * redriven; nor are images holding a face deleted from the source.
 */
import type { ReviewItem } from './outcomes';
import { ReasonCode } from './reasons';
import { faceIdsNamed, type RecordFace } from './records';

/** Reasons given after the face was migrated: reindexing cannot fix them. */
const MIGRATED_ALREADY = new Set<string>([ReasonCode.UserFaceLimit, ReasonCode.UserAssociationRefused]);
/** Reasons of images holding a face someone asked to be forgotten: no run may index them. */
const ERASED = new Set<string>([ReasonCode.OldFaceDeleted, ReasonCode.ImageHoldsDeletedFace]);

export interface RedriveMessage {
  messageId: string;
  item: ReviewItem;
}

export interface RedriveRecord {
  record: unknown;
  /** The messages this record answers for. */
  messageIds: string[];
}

export interface RedrivePlan {
  records: RedriveRecord[];
  notRedrivable: { messageId: string; why: string }[];
  /** Refused records kept as their face ids: redrivable only from a fixed copy the operator gives (`--records`). */
  fixable: string[];
}

/**
 * The old FaceIds a message speaks of:
 * its face, the face ids of its refused record, or the faces of the record it carries.
 */
export function faceIdsOfMessage({ item }: RedriveMessage): string[] {
  return item.face ? [item.face.FaceId] : (item.faceIds ?? faceIdsNamed(item.record));
}

/** Every FaceId the records hold. */
export function faceIdsOfRecords(records: unknown[]): Set<string> {
  return new Set(records.flatMap(faceIdsNamed));
}

export function planRedrive(messages: RedriveMessage[]): RedrivePlan {
  const images = new Map<
    string,
    { record: { Bucket: string; Key: string; ExternalImageId?: string; Faces: RecordFace[] }; messageIds: string[] }
  >();
  const records: RedriveRecord[] = [];
  const refusedRecords = new Map<string, RedriveRecord>();
  const notRedrivable: RedrivePlan['notRedrivable'] = [];
  const fixable: string[] = [];
  for (const { messageId, item } of messages) {
    if (MIGRATED_ALREADY.has(item.reason)) {
      notRedrivable.push({ messageId, why: `${item.reason}: the face was migrated; only its user association failed` });
    } else if (ERASED.has(item.reason)) {
      notRedrivable.push({
        messageId,
        why: `${item.reason}: the image holds a face deleted from the source collection; indexing it would make that face again`,
      });
    } else if (item.reason === ReasonCode.DuplicateFaceId && item.face) {
      // Another record of the run holds this old face; a new run would overwrite that row and leave its face unnamed.
      notRedrivable.push({
        messageId,
        why: `${item.reason}: the face was migrated from another record; fix the records file instead`,
      });
    } else if (item.face && item.Bucket && item.Key) {
      const imageKey = JSON.stringify([item.Bucket, item.Key, item.ExternalImageId ?? null]);
      let image = images.get(imageKey);
      if (!image) {
        image = {
          record: { Bucket: item.Bucket, Key: item.Key, ExternalImageId: item.ExternalImageId, Faces: [] },
          messageIds: [],
        };
        images.set(imageKey, image);
        records.push(image);
      }
      image.messageIds.push(messageId);
      // The DLQ is written at least once: a face sent twice goes back once.
      if (!image.record.Faces.some((face) => face.FaceId === item.face?.FaceId)) image.record.Faces.push(item.face);
    } else if (item.faceIds !== undefined) {
      fixable.push(messageId);
      notRedrivable.push({
        messageId,
        why: `${item.reason}: a refused record is kept as its position and face ids only; fix record ${item.recordIndex ?? '?'} of the records file and give the fixed copy with --records`,
      });
    } else if (item.record !== undefined) {
      const sent = JSON.stringify(item.record);
      const known = refusedRecords.get(sent);
      if (known) {
        known.messageIds.push(messageId);
      } else {
        const refused = { record: item.record, messageIds: [messageId] };
        refusedRecords.set(sent, refused);
        records.push(refused);
      }
    } else {
      notRedrivable.push({ messageId, why: `${item.reason}: the message carries neither a face nor a record` });
    }
  }
  return { records, notRedrivable, fixable };
}
