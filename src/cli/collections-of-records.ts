/**
 * Many collections from one records file, as the original solution migrates them: started without
 * a target, each record goes into the collection its CollectionId names. `start` reads the file
 * once to find those collections, checks each, and starts a plan run with a collection's run for
 * each; every run reads the one file and takes its own records, so no copy of it is made.
 */
import { ResourceNotFoundException } from '@aws-sdk/client-rekognition';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import type { AwsClients } from '../aws/clients';
import { type CompletedMigration, createLedger, holdsFacesNotOurs } from '../stores/ledger';
import { readRecords } from '../records/reader';
import type { Config } from '../domain/config';
import { collectionNamed } from '../domain/records';
import type { PlannedRun } from '../shared';
import { UsageError } from './common';
import { describeS3Failure } from './files';

/** The most collections one records file may name unless `--max-collections` says more. */
export const DEFAULT_MAX_COLLECTIONS = 100;

export interface CollectionsOfRecords {
  /** Each collection the records name, with its count of records, in the order first named. */
  images: Map<string, number>;
  /** Records that name no collection (or none Rekognition takes), and lines that are not records. */
  unnamed: number;
}

/** Counts the records of each collection a records file names; more than `most` collections is a usage error. */
export async function collectionsOfRecords(body: Readable, file: string, most: number): Promise<CollectionsOfRecords> {
  const images = new Map<string, number>();
  let unnamed = 0;
  for await (const entry of readRecords(body)) {
    const named = 'malformed' in entry ? undefined : collectionNamed(entry.value);
    if (named === undefined) {
      unnamed += 1;
      continue;
    }
    images.set(named, (images.get(named) ?? 0) + 1);
    if (images.size > most) {
      body.destroy();
      throw new UsageError(
        `the records file ${file} names more than ${most} collections; raise --max-collections, or give --target to index every record into one collection`,
      );
    }
  }
  return { images, unnamed };
}

/** The records file at the version the runs will read, counted by collection. */
export async function readCollectionsOfRecords(
  aws: AwsClients,
  manifest: { Bucket: string; Key: string },
  etag: string | undefined,
  most: number,
): Promise<CollectionsOfRecords> {
  const file = `s3://${manifest.Bucket}/${manifest.Key}`;
  let body: Readable;
  try {
    body = (await aws.s3.send(new GetObjectCommand({ ...manifest, IfMatch: etag }))).Body as Readable;
  } catch (error) {
    throw describeS3Failure(error, `the records file ${file}`, 'read') ?? error;
  }
  const found = await collectionsOfRecords(body, file, most);
  if (found.images.size === 0)
    throw new UsageError(`no record of ${file} names a CollectionId to index into: give --target`);
  return found;
}

/**
 * A run indexes only into a collection this tool created or took while empty: a target holding
 * faces nobody migrated is an old collection, and its run would fail on it. Said before anything
 * starts, naming the collection.
 */
export async function assertNotOldCollections(
  aws: AwsClients,
  config: Pick<Config, 'bucket'>,
  targets: string[],
  source: string | undefined,
): Promise<void> {
  const ledger = createLedger(aws.s3, config.bucket);
  for (const target of targets) {
    if (target === source)
      throw new UsageError(
        `the records name ${target}, the old collection given with --source, as a collection to index into`,
      );
    const notOurs = await holdsFacesNotOurs(aws.rekognition, ledger, target).catch((error: unknown) => {
      // A collection not created yet is one the run creates.
      if (error instanceof ResourceNotFoundException) return false;
      throw error;
    });
    if (notOurs)
      throw new UsageError(
        `${target} holds faces this tool did not index, so it is an old collection, not one to migrate into: give each record the CollectionId of a new collection, or --target`,
      );
  }
}

export interface SkippedCollection {
  targetCollectionId: string;
  migration: CompletedMigration;
}

/** The targets a plan skips: those an earlier run completed into, unless forced. */
export async function skippedTargets(
  aws: AwsClients,
  config: Pick<Config, 'bucket'>,
  targets: string[],
  force: boolean,
): Promise<SkippedCollection[]> {
  if (force) return [];
  const ledger = createLedger(aws.s3, config.bucket);
  const skipped: SkippedCollection[] = [];
  for (const targetCollectionId of targets) {
    const migration = await ledger.migratedBy(targetCollectionId);
    if (migration) skipped.push({ targetCollectionId, migration });
  }
  return skipped;
}

/** The items of a plan whose targets are not skipped, in order. */
export function notSkipped<T>(items: T[], targetOf: (item: T) => string, skipped: SkippedCollection[]): T[] {
  const left = new Set(skipped.map(({ targetCollectionId }) => targetCollectionId));
  return items.filter((item) => !left.has(targetOf(item)));
}

/** One line a skipped collection, saying how to migrate it again. */
export function skippedLine({ targetCollectionId, migration }: SkippedCollection): string {
  return `skipped ${targetCollectionId}: run ${migration.runId} migrated it at ${migration.endedAt} (images ${migration.images}, matched ${migration.matched}); --force migrates it again`;
}

/**
 * A run for each collection the records name, all reading the one file. The smallest collection's
 * run, which starts first, also refuses the records that name no collection, so each is refused once.
 */
export function runsOfCollections(
  found: CollectionsOfRecords,
  {
    manifest,
    etag,
    source,
    skipped,
  }: {
    manifest: { Bucket: string; Key: string };
    etag: string | undefined;
    source: string | undefined;
    skipped: SkippedCollection[];
  },
): PlannedRun[] {
  const bySize = notSkipped([...found.images], ([collectionId]) => collectionId, skipped).sort(([, a], [, b]) => a - b);
  return bySize.map(([collectionId, images], i) => ({
    targetCollectionId: collectionId,
    manifest,
    ...(etag === undefined ? {} : { manifestETag: etag }),
    sourceCollectionId: source,
    records: { collectionId, refusesUnnamed: i === 0 },
    images: i === 0 ? images + found.unnamed : images,
  }));
}
