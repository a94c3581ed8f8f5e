/**
 * S3: the ledger of what IndexFaces did, per target collection, under `ledger/<target>/`.
 *
 * A record's *identity* is its image and its old faces (bucket, key, ExternalImageId, old FaceIds,
 * and a redrive's scope); the *decision* is everything else that decides what becomes of its faces
 * (the old boxes, QualityFilter, MaxFaces, the IoU threshold, --unmatched). Objects:
 * - `indexed/<identity+decision>`: the faces one indexing gave. Written only if absent, so of two
 *   overlapping attempts exactly one wins; a retried attempt, or a later run with the same
 *   settings, reuses it. A run with other settings indexes again.
 * - `current/<identity>`: the indexing that holds now for the record, the FaceIds it keeps, and
 *   every FaceId any indexing of the record was given. Faces of the record not kept are deleted.
 * - `faces/<FaceId>`: which record claimed the face. Claimed only if unclaimed, so the real
 *   service's habit of answering the same FaceId to two records of one image (same bytes, same
 *   ExternalImageId) never lets both keep it, or one delete what the other keeps.
 * - `images/<ImageId>` and `external-ids/<ExternalImageId>`: this tool indexed that image, or a
 *   record with that ExternalImageId, into the target (the latter written before indexing). Reconcile
 *   deletes only faces these or a claim attribute to the tool.
 * - `owned`: the target is this tool's; reconcile may only ever run on those (holdsFacesNotOurs).
 * - `run-keys/<run>`: the key a run signs its result rows with (domain/result-rows.ts), made by
 *   its first publish; the drain writes only rows signed with the key of the run they name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ListFacesCommand, type RekognitionClient } from '@aws-sdk/client-rekognition';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { FilteredFace, IndexedFace } from '../domain/outcomes';
import type { ImageRecord } from '../domain/records';
import { ROW_KEY_BYTES } from '../domain/result-rows';
import type { ReindexOptions } from '../shared';
import { httpStatusOf } from '../aws/clients';

export interface IndexingRecord {
  faceModelVersion: string;
  faces: IndexedFace[];
  /** Absent in indexings recorded before the ledger kept them. */
  filtered?: FilteredFace[];
}

export interface CurrentIndexing {
  /** The `indexed/` key of the indexing that holds. */
  indexing: string;
  kept: string[];
  /** Every FaceId an indexing of this record was given: those not kept are deleted. */
  faces: string[];
  /** Kept faces deleted since by other means (a duplicate row's face): an indexing naming one is indexed again. */
  gone?: string[];
  runId: string;
}

export interface ImageEntry {
  runId: string;
  recordIndex: number;
}

export interface FaceClaim {
  identity: string;
  runId: string;
}

/** A run that completed into a collection: its id, when it ended, and what it migrated. */
export interface CompletedMigration {
  runId: string;
  endedAt: string;
  images: number;
  matched: number;
}

export type FaceKeeping = 'unclaimed' | 'pending' | 'kept' | 'dropped';

/** What a run decides an image's faces with, beside the record: the part of the options that matters. */
export type Decision = Pick<
  ReindexOptions,
  'qualityFilter' | 'maxFaces' | 'iouThreshold' | 'unmatched' | 'indexingScope'
>;

/** Lookups in flight at once: S3's latency hidden without queueing on the client's sockets. */
const LOOKUPS_IN_FLIGHT = 32;

/** `work` on each item, in order, at most LOOKUPS_IN_FLIGHT at a time. */
export async function eachInSlices<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const done: R[] = [];
  for (let start = 0; start < items.length; start += LOOKUPS_IN_FLIGHT) {
    done.push(...(await Promise.all(items.slice(start, start + LOOKUPS_IN_FLIGHT).map(work))));
  }
  return done;
}

const sha256 = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** The record's identity: which image, and which old faces, whatever the settings. */
export function identityOf(record: ImageRecord, scope: string | undefined): string {
  return sha256([
    record.Bucket,
    record.Key,
    record.ExternalImageId ?? '',
    ...record.Faces.map((face) => face.FaceId).sort(),
    ...(scope === undefined ? [] : [scope]),
  ]);
}

function indexingOf(record: ImageRecord, decision: Decision): string {
  const boxes = [...record.Faces].sort((a, b) => a.FaceId.localeCompare(b.FaceId)).map((face) => face.BoundingBoxes);
  const { qualityFilter, maxFaces, iouThreshold, unmatched } = decision;
  return sha256([
    identityOf(record, decision.indexingScope),
    boxes,
    qualityFilter,
    maxFaces ?? null,
    iouThreshold,
    unmatched,
  ]);
}

const isMissing = (error: unknown) =>
  error instanceof NoSuchKey || error instanceof NotFound || httpStatusOf(error) === 404;
/** 412: the object exists; 409: a concurrent conditional write to the same key is still in progress. */
const lostTheRace = (error: unknown) => httpStatusOf(error) === 412 || httpStatusOf(error) === 409;

/** Runs whose row-signing keys a worker keeps at hand; a worker serves a few runs at a time. */
const RUN_KEYS_KEPT = 64;

/**
 * The key each run signs its rows with, read or made once per worker. `find` gives the run's key,
 * or undefined (not kept, so a key made later is found).
 */
export function runKeyCache(find: (collectionId: string, runId: string) => Promise<Buffer | undefined>) {
  const kept = new Map<string, Promise<Buffer | undefined>>();
  return async (collectionId: string, runId: string): Promise<Buffer | undefined> => {
    const name = JSON.stringify([collectionId, runId]);
    let key = kept.get(name);
    if (key === undefined) {
      if (kept.size >= RUN_KEYS_KEPT) kept.delete(kept.keys().next().value ?? '');
      key = find(collectionId, runId);
      kept.set(name, key);
    }
    try {
      const found = await key;
      if (found === undefined) kept.delete(name);
      return found;
    } catch (error) {
      kept.delete(name);
      throw error;
    }
  };
}

export function createLedger(s3: S3Client, bucket: string) {
  const prefix = (collectionId: string) => `ledger/${collectionId}`;
  const keys = {
    indexed: (collectionId: string, indexing: string) => `${prefix(collectionId)}/indexed/${indexing}.json`,
    current: (collectionId: string, identity: string) => `${prefix(collectionId)}/current/${identity}.json`,
    face: (collectionId: string, faceId: string) => `${prefix(collectionId)}/faces/${faceId}.json`,
    image: (collectionId: string, imageId: string) => `${prefix(collectionId)}/images/${imageId}.json`,
    externalId: (collectionId: string, externalImageId: string) =>
      `${prefix(collectionId)}/external-ids/${sha256(externalImageId)}.json`,
    owner: (collectionId: string) => `${prefix(collectionId)}/owned.json`,
    migrated: (collectionId: string) => `${prefix(collectionId)}/migrated.json`,
    synced: (collectionId: string) => `${prefix(collectionId)}/synced.json`,
    runKey: (collectionId: string, runId: string) => `${prefix(collectionId)}/run-keys/${sha256(runId)}.json`,
  };

  /**
   * Whether the object a read failed on is absent. S3 answers a read of a missing object with 404
   * only to a caller that may list the bucket; the worker may list only under its own prefixes, and
   * S3 may then answer 403. A listing of the key itself tells an entry that is not there from a read
   * the worker may not make.
   */
  async function absent(error: unknown, Key: string): Promise<boolean> {
    if (isMissing(error)) return true;
    if (httpStatusOf(error) !== 403) return false;
    const { Contents = [] } = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: Key, MaxKeys: 1 }));
    return Contents[0]?.Key !== Key;
  }

  async function exists(Key: string): Promise<boolean> {
    try {
      await s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
      return true;
    } catch (error) {
      if (await absent(error, Key)) return false;
      throw error;
    }
  }

  async function read<T>(Key: string): Promise<T | undefined> {
    try {
      const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
      return JSON.parse((await object.Body?.transformToString()) ?? '') as T;
    } catch (error) {
      if (await absent(error, Key)) return undefined;
      throw error;
    }
  }

  async function write(Key: string, value: unknown, onlyIfAbsent = false): Promise<boolean> {
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key,
          Body: JSON.stringify(value),
          ...(onlyIfAbsent ? { IfNoneMatch: '*' } : {}),
        }),
      );
      return true;
    } catch (error) {
      if (onlyIfAbsent && lostTheRace(error)) return false;
      throw error;
    }
  }

  return {
    /** The `indexed/` name of the record's indexing under these settings. */
    indexingKey: indexingOf,

    findIndexing: (
      collectionId: string,
      record: ImageRecord,
      decision: Decision,
    ): Promise<IndexingRecord | undefined> => read(keys.indexed(collectionId, indexingOf(record, decision))),

    /** Whether each record's indexing under these settings is recorded, in order. */
    hasIndexings: (collectionId: string, records: readonly ImageRecord[], decision: Decision): Promise<boolean[]> =>
      eachInSlices(records, (record) => exists(keys.indexed(collectionId, indexingOf(record, decision)))),

    /** Records an indexing unless one is there already; false when another attempt got there first. */
    recordIndexing: (
      collectionId: string,
      record: ImageRecord,
      decision: Decision,
      indexing: IndexingRecord,
    ): Promise<boolean> => write(keys.indexed(collectionId, indexingOf(record, decision)), indexing, true),

    /** Replaces an indexing whose kept faces are gone: the record is indexed again under the same settings. */
    replaceIndexing: async (
      collectionId: string,
      record: ImageRecord,
      decision: Decision,
      indexing: IndexingRecord,
    ): Promise<void> => {
      await write(keys.indexed(collectionId, indexingOf(record, decision)), indexing);
    },

    current: (collectionId: string, identity: string): Promise<CurrentIndexing | undefined> =>
      read(keys.current(collectionId, identity)),

    setCurrent: async (collectionId: string, identity: string, current: CurrentIndexing): Promise<void> => {
      await write(keys.current(collectionId, identity), current);
    },

    claim: (collectionId: string, faceId: string): Promise<FaceClaim | undefined> =>
      read(keys.face(collectionId, faceId)),

    /**
     * Whether the record that claimed each face keeps it now, in order: `unclaimed` (no record
     * claimed it), `pending` (its record has no current indexing yet: an attempt in flight or one
     * that crashed), `kept`, or `dropped` (its record's current indexing does not keep it).
     */
    async keepingOf(collectionId: string, faceIds: readonly string[]): Promise<FaceKeeping[]> {
      const claims = await eachInSlices(faceIds, (faceId) => read<FaceClaim>(keys.face(collectionId, faceId)));
      const identities = [...new Set(claims.flatMap((claim) => (claim ? [claim.identity] : [])))];
      const currents = await eachInSlices(identities, (identity) =>
        read<CurrentIndexing>(keys.current(collectionId, identity)),
      );
      const currentOf = new Map(identities.map((identity, i) => [identity, currents[i]]));
      return faceIds.map((faceId, i) => {
        const claim = claims[i];
        if (claim === undefined) return 'unclaimed';
        const current = currentOf.get(claim.identity);
        if (current === undefined) return 'pending';
        return current.kept.includes(faceId) ? 'kept' : 'dropped';
      });
    },

    /**
     * Claims each face for the record unless another record holds it; returns the FaceIds another
     * record holds. A claim of the same record is this record's own, from an earlier attempt or run.
     */
    async claimFaces(collectionId: string, faceIds: readonly string[], claim: FaceClaim): Promise<Set<string>> {
      const held = await eachInSlices(faceIds, async (faceId) => {
        if (await write(keys.face(collectionId, faceId), claim, true)) return undefined;
        const holder = await read<FaceClaim>(keys.face(collectionId, faceId));
        return holder === undefined || holder.identity === claim.identity ? undefined : faceId;
      });
      return new Set(held.filter((faceId): faceId is string => faceId !== undefined));
    },

    async recordImage(collectionId: string, imageId: string, entry: ImageEntry): Promise<void> {
      await write(keys.image(collectionId, imageId), entry);
    },

    /** Whether each image has an entry, in order. */
    hasImages: (collectionId: string, imageIds: readonly string[]): Promise<boolean[]> =>
      eachInSlices(imageIds, (imageId) => exists(keys.image(collectionId, imageId))),

    /** Notes, before any indexing, that records with these ExternalImageIds are indexed into the target. */
    async recordExternalIds(collectionId: string, externalImageIds: readonly string[], runId: string): Promise<void> {
      await eachInSlices([...new Set(externalImageIds)], (externalImageId) =>
        write(keys.externalId(collectionId, externalImageId), { runId }),
      );
    },

    hasExternalIds: (collectionId: string, externalImageIds: readonly string[]): Promise<boolean[]> =>
      eachInSlices(externalImageIds, (externalImageId) => exists(keys.externalId(collectionId, externalImageId))),

    ownsCollection: (collectionId: string): Promise<boolean> => exists(keys.owner(collectionId)),

    /** The key the run signs its result rows with, or undefined when it has not published any. */
    async runKey(collectionId: string, runId: string): Promise<Buffer | undefined> {
      const stored = await read<{ key: string }>(keys.runKey(collectionId, runId));
      return stored && Buffer.from(stored.key, 'base64');
    },

    /** The run's key, made now if this is its first publish; of two attempts making it at once, one wins. */
    async ensureRunKey(collectionId: string, runId: string): Promise<Buffer> {
      await write(keys.runKey(collectionId, runId), { key: randomBytes(ROW_KEY_BYTES).toString('base64') }, true);
      const stored = await read<{ key: string }>(keys.runKey(collectionId, runId));
      if (!stored) throw new Error(`the row-signing key of run ${runId} was written but cannot be read`);
      return Buffer.from(stored.key, 'base64');
    },

    /** The first run's claim stands: a later run taking the collection again changes nothing. */
    async claimCollection(collectionId: string, runId: string): Promise<void> {
      await write(keys.owner(collectionId), { runId }, true);
    },

    /** The last run that completed into the collection, which a later plan skips unless forced. */
    migratedBy: (collectionId: string): Promise<CompletedMigration | undefined> => read(keys.migrated(collectionId)),

    async recordMigration(collectionId: string, migration: CompletedMigration): Promise<void> {
      await write(keys.migrated(collectionId), migration);
    },

    /** When the last sync into the collection listed its old collection; undefined before the first. */
    lastSync: (collectionId: string): Promise<{ listedAt: string } | undefined> => read(keys.synced(collectionId)),

    async recordSync(collectionId: string, sync: { listedAt: string }): Promise<void> {
      await write(keys.synced(collectionId), sync);
    },

    /**
     * Takes a face out of the ledger (`reindex forget`): out of the indexing that holds for its
     * record, so a later run reusing it makes no face for it again, out of the record's current
     * entry, and its claim deleted. False when no record claimed it.
     */
    async forgetFace(collectionId: string, faceId: string): Promise<boolean> {
      const claim = await read<FaceClaim>(keys.face(collectionId, faceId));
      if (claim === undefined) return false;
      const current = await read<CurrentIndexing>(keys.current(collectionId, claim.identity));
      if (current !== undefined) {
        const indexing =
          current.indexing === ''
            ? undefined
            : await read<IndexingRecord>(keys.indexed(collectionId, current.indexing));
        if (indexing?.faces.some((face) => face.FaceId === faceId)) {
          await write(keys.indexed(collectionId, current.indexing), {
            ...indexing,
            faces: indexing.faces.filter((face) => face.FaceId !== faceId),
          });
        }
        const without = (faceIds: string[]) => faceIds.filter((id) => id !== faceId);
        await write(keys.current(collectionId, claim.identity), {
          ...current,
          kept: without(current.kept),
          faces: without(current.faces),
          ...(current.gone ? { gone: without(current.gone) } : {}),
        });
      }
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys.face(collectionId, faceId) }));
      return true;
    },

    /** Deletes the key a run signed its rows with: its rows still queued can no longer be written. */
    async deleteRunKey(collectionId: string, runId: string): Promise<boolean> {
      if (!(await exists(keys.runKey(collectionId, runId)))) return false;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys.runKey(collectionId, runId) }));
      return true;
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;

/**
 * Whether a run may not write into the collection: reconcile deletes every face of its target that
 * the ledger does not know, so a run writes only into a collection the ledger owns, or one that
 * holds no face yet. A missing collection is Rekognition's ResourceNotFoundException, for the caller.
 */
export async function holdsFacesNotOurs(
  rekognition: RekognitionClient,
  ledger: Ledger,
  collectionId: string,
): Promise<boolean> {
  if (await ledger.ownsCollection(collectionId)) return false;
  const { Faces = [] } = await rekognition.send(new ListFacesCommand({ CollectionId: collectionId, MaxResults: 1 }));
  return Faces.length > 0;
}
