import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
} from '@aws-sdk/client-rekognition';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { loadConfig } from '../../src/domain/config';
import { PLAN_FORMAT, type Plan } from '../../src/domain/plans';
import { checkRecord, type ImageRecord } from '../../src/domain/records';
import { runCli } from '../../harness/cli';
import { useLocalStack } from '../../harness/local-stack';

let env: NodeJS.ProcessEnv;
let aws: AwsClients;
let bucket: string;
const directory = mkdtempSync(path.join(tmpdir(), 'plan-test-'));
const run = randomUUID().slice(0, 8);
/** Three collections on the old model, one on the new; the faces of each image, by ExternalImageId. */
const OLD = { tenantA: `plan-${run}-tenant-a`, tenantB: `plan-${run}-tenant-b`, empty: `plan-${run}-empty` };
const NEW = `plan-${run}-already-v7`;
const IMAGES: Record<string, { name: string; faces: number }[]> = {
  [OLD.tenantA]: [
    { name: 'ana', faces: 2 },
    { name: 'ben', faces: 2 },
  ],
  [OLD.tenantB]: [{ name: 'cleo', faces: 3 }],
  [OLD.empty]: [],
  [NEW]: [{ name: 'dan', faces: 1 }],
};

async function setFaceModel(version: string): Promise<void> {
  await fetch(`${process.env.AWS_ENDPOINT_URL_REKOGNITION ?? ''}/_admin/settings`, {
    method: 'PUT',
    body: JSON.stringify({ currentFaceModelVersion: version }),
  });
}

async function indexImage(CollectionId: string, name: string, faces: number): Promise<string[]> {
  const declared = Array.from({ length: faces }, (_, i) => ({
    person: `${name}-${i}`,
    box: [0.05 + 0.3 * i, 0.2, 0.2, 0.3] as [number, number, number, number],
  }));
  const { FaceRecords = [] } = await aws.rekognition.send(
    new IndexFacesCommand({
      CollectionId,
      Image: { Bytes: syntheticPng(declared) },
      ExternalImageId: name,
      QualityFilter: 'NONE',
    }),
  );
  return FaceRecords.map((record) => record.Face?.FaceId ?? '');
}

beforeAll(async () => {
  env = { ...process.env, ...useLocalStack() };
  const config = loadConfig();
  aws = createAwsClients(config);
  bucket = config.bucket;
  await setFaceModel('6.0');
  try {
    for (const CollectionId of Object.values(OLD))
      await aws.rekognition.send(new CreateCollectionCommand({ CollectionId }));
  } finally {
    await setFaceModel('7.0');
  }
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: NEW }));
  for (const [collection, images] of Object.entries(IMAGES)) {
    for (const { name, faces } of images) {
      const faceIds = await indexImage(collection, name, faces);
      if (name === 'ana') {
        await aws.rekognition.send(new CreateUserCommand({ CollectionId: collection, UserId: 'user-ana' }));
        await aws.rekognition.send(
          new AssociateFacesCommand({ CollectionId: collection, UserId: 'user-ana', FaceIds: faceIds }),
        );
      }
    }
  }
});

afterAll(async () => {
  await Promise.all(
    [...Object.values(OLD), NEW].map((CollectionId) =>
      aws.rekognition.send(new DeleteCollectionCommand({ CollectionId })).catch(() => undefined),
    ),
  );
  destroyAwsClients(aws);
  rmSync(directory, { recursive: true, force: true });
});

const hours = (calls: number, tps: number) => calls / tps / 3600;

test('every collection of the account with its model, faces, users and cost; --older-than keeps those on older models', async () => {
  const all = await runCli(['plan', '--tps', '10', '--json'], env);
  const older = await runCli(['plan', '--tps', '10', '--older-than', '7.0', '--json'], env);

  expect(all.stderr).toBe('');
  expect(all.code).toBe(0);
  const listed = (JSON.parse(all.stdout) as Plan).collections.map((collection) => collection.collectionId);
  expect(listed).toEqual(expect.arrayContaining([...Object.values(OLD), NEW]));
  expect(older.code).toBe(0);
  const kept = (JSON.parse(older.stdout) as Plan).collections;
  expect(kept.map((collection) => collection.collectionId)).toEqual(expect.arrayContaining(Object.values(OLD)));
  expect(kept.every((collection) => collection.faceModelVersion !== '7.0')).toBe(true);
  expect(kept.find((collection) => collection.collectionId === OLD.tenantA)).toEqual({
    collectionId: OLD.tenantA,
    faceModelVersion: '6.0',
    faces: 4,
    users: 1,
    indexFacesCalls: 4,
    callsCounted: false,
    hours: hours(4, 10),
  });
});

test('--collections plans only those, with totals, and says the calls are an upper bound until images are counted', async () => {
  const json = await runCli(
    ['plan', '--collections', OLD.tenantA, OLD.tenantB, NEW, '--older-than', '7.0', '--tps', '5', '--json'],
    env,
  );
  const text = await runCli(['plan', '--collections', OLD.tenantA, OLD.tenantB, '--tps', '5'], env);

  expect(json.code).toBe(0);
  const plan = JSON.parse(json.stdout) as Plan;
  expect(plan.collections.map((collection) => collection.collectionId)).toEqual([OLD.tenantA, OLD.tenantB]);
  expect(plan).toMatchObject({
    format: PLAN_FORMAT,
    region: 'us-east-1',
    tps: 5,
    totals: { collections: 2, faces: 7, users: 1, indexFacesCalls: 7, hours: hours(7, 5) },
  });
  expect(text.code).toBe(0);
  const lines = text.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^collection\s+model\s+faces\s+users\s+IndexFaces calls\s+hours\s+target$/);
  expect(lines[1]).toMatch(new RegExp(`^${OLD.tenantA}\\s+6\\.0\\s+4\\s+1\\s+≤ 4\\s+0\\.00$`));
  expect(lines).toContain('2 collections, 7 faces, 7 IndexFaces calls at most: 0.00 hours at 5/s');
  expect(lines).toContain('(calls are one a face until --out counts the images)');
});

test("--out writes each old collection's records file into its target and a plan file that names them, counting the images", async () => {
  const out = path.join(directory, 'plan');

  const outcome = await runCli(
    [
      'plan',
      '--collections',
      ...Object.values(OLD),
      '--tps',
      '10',
      '--out',
      out,
      '--target-template',
      '{collection}-v7',
      '--key-from',
      'external-image-id',
      '--bucket',
      bucket,
      '--suffix',
      '.png',
      '--json',
    ],
    env,
  );

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  const plan = JSON.parse(outcome.stdout) as Plan;
  expect(JSON.parse(readFileSync(path.join(out, 'plan.json'), 'utf8'))).toEqual(plan);
  expect(plan.totals).toEqual({ collections: 3, faces: 7, users: 1, indexFacesCalls: 3, hours: hours(3, 10) });
  for (const collection of plan.collections) {
    const images = IMAGES[collection.collectionId] ?? [];
    expect(collection).toMatchObject({
      target: `${collection.collectionId}-v7`,
      records: path.join(out, `${collection.collectionId}.jsonl`),
      indexFacesCalls: images.length,
      callsCounted: true,
      unplacedFaces: 0,
    });
    const records = readFileSync(collection.records ?? '', 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as ImageRecord);
    expect(records.every((record) => checkRecord(record).ok && record.CollectionId === collection.target)).toBe(true);
    expect(records.map((record) => [record.Key, record.Faces.length]).sort()).toEqual(
      images.map(({ name, faces }) => [`${name}.png`, faces]).sort(),
    );
  }
});

describe('bad input is one line on stderr and exit code 2', () => {
  test.each([
    [
      ['--collections', 'two words'],
      '--collections: two words is not a collection name: letters, digits and _ . - only, at most 255',
    ],
    [['--older-than', 'latest'], '--older-than: latest is not a face model version, such as 7.0'],
    [['--collections', `plan-${run}-missing`], `the collection plan-${run}-missing does not exist in us-east-1`],
    [
      ['--collections', OLD.tenantA, '--out', directory],
      "--out needs --target-template, the name of each collection's target",
    ],
    [['--collections', OLD.tenantA, '--target-template', '{collection}-v7'], '--target-template goes with --out'],
    [
      [
        '--collections',
        OLD.tenantA,
        '--out',
        directory,
        '--target-template',
        'faces-v7',
        '--key-from',
        'external-image-id',
        '--bucket',
        'photos',
      ],
      "the target template faces-v7 must hold {collection}, which each old collection's name replaces",
    ],
    [
      [
        '--collections',
        OLD.tenantA,
        '--out',
        directory,
        '--target-template',
        '{collection}',
        '--key-from',
        'external-image-id',
        '--bucket',
        'photos',
      ],
      `the target ${OLD.tenantA} of ${OLD.tenantA} is itself a collection the plan migrates; narrow the plan with --older-than or --collections`,
    ],
    [
      [
        '--collections',
        OLD.tenantA,
        '--out',
        directory,
        '--target-template',
        '{collection}/v7',
        '--key-from',
        'external-image-id',
        '--bucket',
        'photos',
      ],
      `the target ${OLD.tenantA}/v7 of ${OLD.tenantA} is not a collection name: letters, digits and _ . - only, at most 255`,
    ],
  ])('plan %j', async (args, message) => {
    const outcome = await runCli(['plan', '--tps', '10', ...args], env);

    expect({ code: outcome.code, stderr: outcome.stderr }).toEqual({ code: 2, stderr: `reindex: ${message}\n` });
  });
});
