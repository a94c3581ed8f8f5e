/**
 * npm run demo, after the stack is up: the main job, start to finish, on the local stack.
 * 1. an "old" collection on face model 6.0, indexed from face-api's six sample photos;
 * 2. its records file, built by `reindex prepare` from ListFaces (each image's key from its
 *    ExternalImageId) and checked by `reindex validate`;
 * 3. a worker, and `reindex start --wait` migrating the collection to a new one on 7.0;
 * 4. the summary and the run's page in the Temporal UI.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  IndexFacesCommand,
  RekognitionClient,
} from '@aws-sdk/client-rekognition';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SAMPLE_PHOTOS } from '../rekognition-local/calibrate';
import { ROOT } from './settings';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through npm run demo`);
  return value;
};

async function setFaceModel(version: string): Promise<void> {
  const response = await fetch(`${env('AWS_ENDPOINT_URL_REKOGNITION')}/_admin/settings`, {
    method: 'PUT',
    body: JSON.stringify({ currentFaceModelVersion: version }),
  });
  if (!response.ok) throw new Error(`rekognition-local refused face model ${version}: ${await response.text()}`);
}

/** Starts a worker and resolves once it polls both task queues. */
function startWorker(): Promise<ChildProcess> {
  const worker = spawn(process.execPath, [path.join(ROOT, 'bin', 'worker.js')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker: polling')) resolve(worker);
    };
    worker.stdout.on('data', collect);
    worker.stderr.on('data', collect);
    worker.on('exit', (code) =>
      reject(new Error(`the worker exited with code ${code} before polling:\n${output.slice(-2000)}`)),
    );
  });
}

function runCli(args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const cli = spawn(process.execPath, [path.join(ROOT, 'bin', 'reindex.js'), ...args], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    cli.on('exit', (code) => resolve(code ?? 1));
  });
}

async function buildOldCollection(
  rekognition: RekognitionClient,
  s3: S3Client,
  bucket: string,
  collectionId: string,
): Promise<void> {
  await setFaceModel('6.0');
  try {
    await rekognition.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  } finally {
    await setFaceModel('7.0');
  }
  for (const photo of SAMPLE_PHOTOS) {
    const name = path.basename(photo, '.jpg');
    const Key = `demo/photos/${name}.jpg`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: readFileSync(photo), ContentType: 'image/jpeg' }));
    const { FaceRecords = [] } = await rekognition.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { S3Object: { Bucket: bucket, Name: Key } },
        ExternalImageId: name,
        QualityFilter: 'NONE',
      }),
    );
    // The first face of each photo belongs to a known person, as in an application that enrolls users.
    const enrolled = FaceRecords[0]?.Face?.FaceId;
    if (enrolled) {
      const UserId = `person-${name}`;
      await rekognition.send(new CreateUserCommand({ CollectionId: collectionId, UserId }));
      await rekognition.send(new AssociateFacesCommand({ CollectionId: collectionId, UserId, FaceIds: [enrolled] }));
    }
    console.log(`demo: indexed ${name}.jpg into ${collectionId}: ${FaceRecords.length} faces`);
  }
}

async function main(): Promise<number> {
  const bucket = env('REINDEX_BUCKET');
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '')
    .toLowerCase();
  const [oldCollection, newCollection] = [`demo-faces-v6-${stamp}`, `demo-faces-v7-${stamp}`];
  const rekognition = new RekognitionClient({});
  const s3 = new S3Client({ forcePathStyle: true });
  let worker: ChildProcess | undefined;
  try {
    await buildOldCollection(rekognition, s3, bucket, oldCollection);
    const manifest = `s3://${bucket}/demo/${oldCollection}.jsonl`;
    const prepared = await runCli([
      'prepare',
      '--source',
      oldCollection,
      '--out',
      manifest,
      '--key-from',
      'external-image-id',
      '--bucket',
      bucket,
      '--prefix',
      'demo/photos/',
      '--suffix',
      '.jpg',
    ]);
    if (prepared !== 0) return prepared;
    const validated = await runCli(['validate', manifest]);
    if (validated !== 0) return validated;
    worker = await startWorker();
    console.log(`demo: worker started; migrating ${oldCollection} (face model 6.0) to ${newCollection}`);
    const id = `demo-${stamp}`;
    const code = await runCli([
      'start',
      '--records',
      manifest,
      '--source',
      oldCollection,
      '--target',
      newCollection,
      '--id',
      id,
      '--wait',
    ]);
    console.log(`demo: the run in the Temporal UI: ${env('TEMPORAL_UI_URL')}/namespaces/default/workflows/${id}`);
    return code;
  } finally {
    worker?.kill('SIGTERM');
    rekognition.destroy();
    s3.destroy();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 1;
  },
);
