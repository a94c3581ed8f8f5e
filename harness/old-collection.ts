/**
 * An old collection on face model 6.0 as an application built it, for suites that migrate one and
 * then check the result: synthetic photos indexed with their names as ExternalImageIds, known
 * people enrolled as users, the records file a run takes, written from ListFaces, and the run
 * itself, by `reindex start --wait` on a worker of the suite's own. Rekognition is a
 * rekognition-local of the suite's own, so switching its face model touches no other suite.
 */
import { randomUUID } from 'node:crypto';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  IndexFacesCommand,
  ListFacesCommand,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { DeclaredFace } from '../infra/rekognition-local/images';
import { syntheticPng } from '../infra/rekognition-local/synthetic-images';
import { createAwsClients, destroyAwsClients } from '../src/aws/clients';
import type { RunSummary } from '../src/shared';
import { lastLine, runCli } from './cli';
import { type RunningRekognition, startRekognitionLocal } from './rekognition-local';
import { createRunResources, type RunResources } from './runs';
import { startWorker } from './worker';

export interface OldPhoto {
  faces: DeclaredFace[];
  userId?: string;
}

export interface OldCollection {
  collectionId: string;
  /** Each photo's old FaceIds, by photo name. */
  oldFaceIds: Map<string, string[]>;
}

/** Puts a photo in the bucket under `<prefix>/<name>.png` and indexes it into the collection. */
export async function indexPhoto(
  { rekognition, resources }: { rekognition: RunningRekognition; resources: RunResources },
  { collectionId, prefix, name, photo }: { collectionId: string; prefix: string; name: string; photo: OldPhoto },
): Promise<string[]> {
  const Key = `${prefix}/${name}.png`;
  await resources.aws.s3.send(
    new PutObjectCommand({ Bucket: resources.config.bucket, Key, Body: syntheticPng(photo.faces) }),
  );
  const { FaceRecords = [] } = await rekognition.client.send(
    new IndexFacesCommand({
      CollectionId: collectionId,
      Image: { S3Object: { Bucket: resources.config.bucket, Name: Key } },
      ExternalImageId: name,
      QualityFilter: 'NONE',
    }),
  );
  const FaceIds = FaceRecords.map((record) => record.Face?.FaceId ?? '');
  if (photo.userId) {
    await rekognition.client
      .send(new CreateUserCommand({ CollectionId: collectionId, UserId: photo.userId }))
      .catch(() => undefined);
    await rekognition.client.send(
      new AssociateFacesCommand({ CollectionId: collectionId, UserId: photo.userId, FaceIds }),
    );
  }
  return FaceIds;
}

/** A new collection on face model 6.0 holding the photos, their images under `prefix`. */
export async function buildOldCollection(
  suite: { rekognition: RunningRekognition; resources: RunResources },
  { namePrefix, prefix, photos }: { namePrefix: string; prefix: string; photos: Record<string, OldPhoto> },
): Promise<OldCollection> {
  const { rekognition } = suite;
  const collectionId = `${namePrefix}-v6-${randomUUID()}`;
  await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '6.0' });
  try {
    await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  } finally {
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '7.0' });
  }
  const oldFaceIds = new Map<string, string[]>();
  for (const [name, photo] of Object.entries(photos))
    oldFaceIds.set(name, await indexPhoto(suite, { collectionId, prefix, name, photo }));
  return { collectionId, oldFaceIds };
}

/** The records file from ListFaces, grouped by image, each image's key from its ExternalImageId; its s3:// URI. */
export async function writeRecordsFile(
  { rekognition, resources }: { rekognition: RunningRekognition; resources: RunResources },
  { collectionId, prefix, names }: { collectionId: string; prefix: string; names: string[] },
): Promise<string> {
  const { Faces = [] } = await rekognition.client.send(
    new ListFacesCommand({ CollectionId: collectionId, MaxResults: 4096 }),
  );
  const lines = names.map((name) =>
    JSON.stringify({
      Bucket: resources.config.bucket,
      Key: `${prefix}/${name}.png`,
      ExternalImageId: name,
      Faces: Faces.filter((face) => face.ExternalImageId === name).map((face) => ({
        FaceId: face.FaceId,
        ImageId: face.ImageId,
        UserId: face.UserId,
        BoundingBoxes: face.BoundingBox,
      })),
    }),
  );
  const Key = `${prefix}/records.jsonl`;
  await resources.aws.s3.send(new PutObjectCommand({ Bucket: resources.config.bucket, Key, Body: lines.join('\n') }));
  return `s3://${resources.config.bucket}/${Key}`;
}

/** An old collection on face model 6.0, its records file, and a worker and service to migrate it with. */
export interface OldCollectionSuite extends OldCollection {
  resources: RunResources;
  rekognition: RunningRekognition;
  /** The environment of a `reindex` process that works on the suite's resources and service. */
  env: NodeJS.ProcessEnv;
  /** Where the photos' images are in the bucket. */
  prefix: string;
  /** The records file of the photos, as an s3:// URI. */
  records: string;
  /** A new collection's name, for the target. */
  target: string;
  stop(): Promise<void>;
}

export interface MigratedCollection extends OldCollectionSuite {
  runId: string;
  /** What `reindex start --wait --json` printed last; its stderr was empty. */
  summary: RunSummary;
}

/** Builds an old collection of the photos, with its records file, a worker and a rekognition-local of its own. */
export async function prepareOldCollection(
  namePrefix: string,
  photos: Record<string, OldPhoto>,
): Promise<OldCollectionSuite> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
  };
  try {
    const resources = await createRunResources();
    stops.push(() => resources.release());
    const rekognition = await startRekognitionLocal();
    stops.push(() => rekognition.stop());
    // The worker's clients read the endpoint when they are built: they go to this suite's service.
    process.env.AWS_ENDPOINT_URL_REKOGNITION = rekognition.endpoint;
    const workerAws = createAwsClients(resources.config);
    stops.push(() => Promise.resolve(destroyAwsClients(workerAws)));
    const worker = await startWorker({ ...resources, aws: workerAws });
    stops.push(() => worker.stop());
    const env = { ...worker.cliEnv, AWS_ENDPOINT_URL_REKOGNITION: rekognition.endpoint };

    const prefix = `tests/${namePrefix}-${randomUUID()}`;
    const old = await buildOldCollection({ rekognition, resources }, { namePrefix, prefix, photos });
    const records = await writeRecordsFile(
      { rekognition, resources },
      { collectionId: old.collectionId, prefix, names: Object.keys(photos) },
    );
    const target = `${namePrefix}-v7-${randomUUID()}`;
    return { ...old, resources, rekognition, env, prefix, records, target, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Builds an old collection of the photos and migrates it to face model 7.0 with QualityFilter NONE. */
export async function migrateOldCollection(
  namePrefix: string,
  photos: Record<string, OldPhoto>,
): Promise<MigratedCollection> {
  const suite = await prepareOldCollection(namePrefix, photos);
  try {
    const runId = `${namePrefix}-${randomUUID()}`;
    const started = await runCli(
      [
        'start',
        '--manifest',
        suite.records,
        '--source',
        suite.collectionId,
        '--target',
        suite.target,
        '--id',
        runId,
        '--quality-filter',
        'NONE',
        '--wait',
        '--json',
      ],
      suite.env,
    );
    if (started.stderr !== '') throw new Error(`reindex start wrote to stderr: ${started.stderr}`);
    const summary = JSON.parse(lastLine(started.stdout)) as RunSummary;
    return { ...suite, runId, summary };
  } catch (error) {
    await suite.stop();
    throw error;
  }
}
