/**
 * S3: the ledger of what IndexFaces did, per target collection. Two objects per indexed image:
 * - the indexing record, keyed by target and record (its image and its old faces): a retried
 *   attempt, or a later run of the same records file after a failed one, finds it and reuses it
 *   instead of indexing the image again. It is written only if absent, so of two overlapping
 *   attempts exactly one wins and the other deletes what it indexed.
 * - the image entry, keyed by target collection and the ImageId IndexFaces gave: reconcile keeps a
 *   face of the target only when its ImageId has one. A face whose indexing crashed before it was
 *   recorded has none and is deleted.
 * And one object per target collection this tool owns: reconcile may only ever run on those.
 */
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, NoSuchKey, NotFound, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { IndexedFace } from '../domain/outcomes';
import type { ImageRecord } from '../domain/records';
import { httpStatusOf } from './aws-clients';

export interface IndexingRecord {
  faceModelVersion: string;
  faces: IndexedFace[];
}

export interface ImageEntry {
  runId: string;
  recordIndex: number;
}

/** Lookups in flight at once: S3's latency hidden without queueing on the client's sockets. */
const LOOKUPS_IN_FLIGHT = 32;

/** `exists` of each item, in order, at most LOOKUPS_IN_FLIGHT at a time. */
async function existsEach<T>(items: readonly T[], exists: (item: T) => Promise<boolean>): Promise<boolean[]> {
  const found: boolean[] = [];
  for (let start = 0; start < items.length; start += LOOKUPS_IN_FLIGHT) {
    found.push(...(await Promise.all(items.slice(start, start + LOOKUPS_IN_FLIGHT).map(exists))));
  }
  return found;
}

export function createLedger(s3: S3Client, bucket: string) {
  const indexingKey = (collectionId: string, record: ImageRecord, scope: string | undefined) => {
    const identity = [record.Bucket, record.Key, record.ExternalImageId ?? '', ...record.Faces.map((face) => face.FaceId).sort(), ...(scope === undefined ? [] : [scope])];
    return `ledger/${collectionId}/indexed/${createHash('sha256').update(JSON.stringify(identity)).digest('hex')}.json`;
  };
  const imageKey = (collectionId: string, imageId: string) => `ledger/${collectionId}/images/${imageId}.json`;
  const ownerKey = (collectionId: string) => `ledger/${collectionId}/owned.json`;

  async function exists(Key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
      return true;
    } catch (error) {
      if (error instanceof NotFound || httpStatusOf(error) === 404) return false;
      throw error;
    }
  }

  return {
    async findIndexing(collectionId: string, record: ImageRecord, scope: string | undefined): Promise<IndexingRecord | undefined> {
      try {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: indexingKey(collectionId, record, scope) }));
        return JSON.parse((await object.Body?.transformToString()) ?? '') as IndexingRecord;
      } catch (error) {
        if (error instanceof NoSuchKey) return undefined;
        throw error;
      }
    },

    /** Whether each record's indexing is recorded, in order. */
    hasIndexings: (collectionId: string, records: readonly ImageRecord[], scope: string | undefined): Promise<boolean[]> =>
      existsEach(records, (record) => exists(indexingKey(collectionId, record, scope))),

    /** Records an indexing unless one is there already; false when another attempt got there first. */
    async recordIndexing(collectionId: string, record: ImageRecord, scope: string | undefined, indexing: IndexingRecord): Promise<boolean> {
      try {
        await s3.send(
          new PutObjectCommand({ Bucket: bucket, Key: indexingKey(collectionId, record, scope), Body: JSON.stringify(indexing), IfNoneMatch: '*' }),
        );
        return true;
      } catch (error) {
        // 409: a concurrent conditional write to the same key is still in progress.
        if (httpStatusOf(error) === 412 || httpStatusOf(error) === 409) return false;
        throw error;
      }
    },

    async recordImage(collectionId: string, imageId: string, entry: ImageEntry): Promise<void> {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: imageKey(collectionId, imageId), Body: JSON.stringify(entry) }));
    },

    /** Whether each image has an entry, in order. */
    hasImages: (collectionId: string, imageIds: readonly string[]): Promise<boolean[]> =>
      existsEach(imageIds, (imageId) => exists(imageKey(collectionId, imageId))),

    ownsCollection: (collectionId: string): Promise<boolean> => exists(ownerKey(collectionId)),

    async claimCollection(collectionId: string, runId: string): Promise<void> {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: ownerKey(collectionId), Body: JSON.stringify({ runId }) }));
    },
  };
}
