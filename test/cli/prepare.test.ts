import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AssociateFacesCommand,
  CreateCollectionCommand,
  CreateUserCommand,
  DeleteCollectionCommand,
  IndexFacesCommand,
} from '@aws-sdk/client-rekognition';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { loadConfig } from '../../src/domain/config';
import { checkRecord, type ImageRecord } from '../../src/domain/records';
import { runCli } from '../../harness/cli';
import { useLocalStack } from '../../harness/local-stack';

let env: NodeJS.ProcessEnv;
let aws: AwsClients;
let bucket: string;
let collection: string;
const directory = mkdtempSync(path.join(tmpdir(), 'prepare-test-'));
/** The old collection as the test built it: each image's faces, by ExternalImageId ('' for none). */
const indexed = new Map<string, { imageId: string; faceIds: string[] }>();
const collections: string[] = [];

const IMAGES = ['ana', 'ben', 'cleo', 'dan'];
const FACES_PER_IMAGE = 3;

async function indexImage(name: string | undefined, faces: number): Promise<void> {
  const declared = Array.from({ length: faces }, (_, i) => ({
    person: `${name ?? 'nobody'}-${i}`,
    box: [0.05 + 0.3 * i, 0.2, 0.2, 0.3] as [number, number, number, number],
  }));
  const { FaceRecords = [] } = await aws.rekognition.send(
    new IndexFacesCommand({
      CollectionId: collection,
      Image: { Bytes: syntheticPng(declared) },
      ...(name ? { ExternalImageId: name } : {}),
      QualityFilter: 'NONE',
    }),
  );
  indexed.set(name ?? '', {
    imageId: FaceRecords[0]?.Face?.ImageId ?? '',
    faceIds: FaceRecords.map((record) => record.Face?.FaceId ?? ''),
  });
}

beforeAll(async () => {
  env = { ...process.env, ...useLocalStack() };
  const config = loadConfig();
  aws = createAwsClients(config);
  bucket = config.bucket;
  collection = `prepare-old-${randomUUID().slice(0, 8)}`;
  collections.push(collection);
  await aws.rekognition.send(new CreateCollectionCommand({ CollectionId: collection }));
  for (const name of IMAGES) await indexImage(name, FACES_PER_IMAGE);
  // An image indexed without ExternalImageId: --key-from cannot place its face.
  await indexImage(undefined, 1);
  // ana's first face belongs to a user, which ListFaces reports and the record keeps.
  await aws.rekognition.send(new CreateUserCommand({ CollectionId: collection, UserId: 'user-ana' }));
  await aws.rekognition.send(
    new AssociateFacesCommand({
      CollectionId: collection,
      UserId: 'user-ana',
      FaceIds: [indexed.get('ana')?.faceIds[0] ?? ''],
    }),
  );
});

afterAll(async () => {
  await Promise.all(
    collections.map((CollectionId) =>
      aws.rekognition.send(new DeleteCollectionCommand({ CollectionId })).catch(() => undefined),
    ),
  );
  destroyAwsClients(aws);
  rmSync(directory, { recursive: true, force: true });
});

const readLines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** Each record's key and its FaceIds, sorted, to compare with what was indexed. */
const imagesOf = (records: ImageRecord[]) =>
  records
    .map((record) => ({ Key: record.Key, FaceIds: record.Faces.map((face) => face.FaceId).sort() }))
    .sort((a, b) => a.Key.localeCompare(b.Key));

test('--key-from external-image-id writes one record per image, every face in it, and lists the face it cannot place', async () => {
  const out = path.join(directory, 'from-external-id.jsonl');

  const outcome = await runCli(
    [
      'prepare',
      '--source',
      collection,
      '--out',
      out,
      '--key-from',
      'external-image-id',
      '--bucket',
      bucket,
      '--prefix',
      'people/',
      '--suffix',
      '.png',
      '--target',
      'faces-v7',
      '--json',
    ],
    env,
  );

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  expect(JSON.parse(outcome.stdout)).toEqual({
    source: collection,
    images: 4,
    faces: 13,
    placed: 12,
    unplaced: 1,
    unplacedByCause: { NO_EXTERNAL_IMAGE_ID: 1 },
    output: out,
    unplacedOutput: `${out}.unplaced.jsonl`,
  });
  const records = readLines(out) as unknown as ImageRecord[];
  expect(records.every((record) => checkRecord(record).ok)).toBe(true);
  expect(imagesOf(records)).toEqual(
    IMAGES.map((name) => ({ Key: `people/${name}.png`, FaceIds: [...(indexed.get(name)?.faceIds ?? [])].sort() })),
  );
  expect(records.every((record) => record.CollectionId === 'faces-v7' && record.Bucket === bucket)).toBe(true);
  const ana = records.find((record) => record.ExternalImageId === 'ana');
  expect(ana?.Faces.find((face) => face.FaceId === indexed.get('ana')?.faceIds[0])?.UserId).toBe('user-ana');
  expect(ana?.Faces.every((face) => face.ImageId === indexed.get('ana')?.imageId)).toBe(true);
  expect(readLines(`${out}.unplaced.jsonl`)).toEqual([
    expect.objectContaining({
      FaceId: indexed.get('')?.faceIds[0],
      cause: 'NO_EXTERNAL_IMAGE_ID',
      detail: 'the face has no ExternalImageId',
    }),
  ]);
});

test('grouping spread over many partitions on disk gives the same records as grouping in one', async () => {
  const [whole, spread] = [path.join(directory, 'whole.jsonl'), path.join(directory, 'spread.jsonl')];
  const args = ['--source', collection, '--key-template', `s3://${bucket}/{ExternalImageId}.png`];

  expect((await runCli(['prepare', ...args, '--out', whole], env)).code).toBe(0);
  expect((await runCli(['prepare', ...args, '--out', spread, '--faces-in-memory', '2'], env)).code).toBe(0);

  const [wholeImages, spreadImages] = [whole, spread].map((file) =>
    imagesOf(readLines(file) as unknown as ImageRecord[]),
  );
  expect(wholeImages).toHaveLength(4);
  expect(spreadImages).toEqual(wholeImages);
});

test('--key-template to S3 as the original JSON array, with the summary an operator reads', async () => {
  const out = `s3://${bucket}/tests/prepare-${randomUUID()}/records.json`;

  const outcome = await runCli(
    [
      'prepare',
      '--source',
      collection,
      '--out',
      out,
      '--format',
      'json',
      '--key-template',
      `s3://${bucket}/by-image/{ImageId}.png`,
    ],
    env,
  );

  expect(outcome.code).toBe(0);
  expect(outcome.stdout.split('\n')).toEqual([
    `records file  ${out}`,
    `source        ${collection}`,
    'images        5',
    'faces         13',
    'placed        13',
    'unplaced      0',
    `unplaced file ${out}.unplaced.jsonl`,
    '',
  ]);
  const key = out.replace(`s3://${bucket}/`, '');
  const { Body } = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const records = JSON.parse((await Body?.transformToString()) ?? '') as ImageRecord[];
  expect(records.map((record) => record.Key).sort()).toEqual(
    [...indexed.values()].map(({ imageId }) => `by-image/${imageId}.png`).sort(),
  );
  const { Body: unplaced } = await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${key}.unplaced.jsonl` }));
  expect(await unplaced?.transformToString()).toBe('');
});

test('--mapping places faces by a CSV column, its UserId fills the face, and a face it does not name is unplaced', async () => {
  const mapping = path.join(directory, 'mapping.csv');
  const [ana, ben] = [indexed.get('ana'), indexed.get('ben')];
  writeFileSync(
    mapping,
    [
      'FaceId,photo,UserId',
      ...(ana?.faceIds ?? []).map(
        (faceId, i) => `${faceId},s3://${bucket}/mapped/ana.png,${i === 1 ? 'user-ana-2' : ''}`,
      ),
      ...(ben?.faceIds ?? []).map((faceId) => `${faceId},s3://${bucket}/mapped/ben.png,`),
    ].join('\n'),
  );
  const out = path.join(directory, 'mapped.jsonl');

  const outcome = await runCli(
    [
      'prepare',
      '--source',
      collection,
      '--out',
      out,
      '--mapping',
      mapping,
      '--unplaced',
      path.join(directory, 'left.jsonl'),
      '--json',
    ],
    env,
  );

  expect(outcome.code).toBe(0);
  expect(JSON.parse(outcome.stdout)).toMatchObject({
    images: 2,
    faces: 13,
    placed: 6,
    unplaced: 7,
    unplacedByCause: { NOT_IN_MAPPING: 7 },
  });
  const records = readLines(out) as unknown as ImageRecord[];
  expect(imagesOf(records)).toEqual([
    { Key: 'mapped/ana.png', FaceIds: [...(ana?.faceIds ?? [])].sort() },
    { Key: 'mapped/ben.png', FaceIds: [...(ben?.faceIds ?? [])].sort() },
  ]);
  const userIds = Object.fromEntries(
    records.flatMap((record) => record.Faces.map((face) => [face.FaceId, face.UserId])),
  );
  // The mapping's UserId fills an empty one; an empty cell keeps the collection's.
  expect(userIds[ana?.faceIds[0] ?? '']).toBe('user-ana');
  expect(userIds[ana?.faceIds[1] ?? '']).toBe('user-ana-2');
  expect(userIds[ben?.faceIds[0] ?? '']).toBeUndefined();
  expect(readLines(path.join(directory, 'left.jsonl')).map((face) => face.cause)).toEqual(
    Array(7).fill('NOT_IN_MAPPING'),
  );
});

test('--source-region signs the source calls for that region', async () => {
  const regions: string[] = [];
  const target = new URL(env.AWS_ENDPOINT_URL_REKOGNITION ?? '');
  // A proxy in front of rekognition-local, which answers any region, notes the credential scope of each call.
  const proxy: Server = createServer((incoming, answer) => {
    regions.push(
      /Credential=[^/]+\/\d+\/([^/]+)\/rekognition\//.exec(incoming.headers.authorization ?? '')?.[1] ?? 'unsigned',
    );
    const forwarded = request(
      {
        host: target.hostname,
        port: target.port,
        path: incoming.url,
        method: incoming.method,
        headers: incoming.headers,
      },
      (response) => {
        answer.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(answer);
      },
    );
    incoming.pipe(forwarded);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  try {
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const out = path.join(directory, 'other-region.jsonl');

    const outcome = await runCli(
      [
        'prepare',
        '--source',
        collection,
        '--out',
        out,
        '--key-from',
        'external-image-id',
        '--bucket',
        bucket,
        '--source-region',
        'eu-west-2',
      ],
      { ...env, AWS_ENDPOINT_URL_REKOGNITION: endpoint },
    );

    expect(outcome.code).toBe(0);
    expect(regions.length).toBeGreaterThanOrEqual(2);
    expect(new Set(regions)).toEqual(new Set(['eu-west-2']));
    expect(readLines(out)).toHaveLength(4);
  } finally {
    await new Promise((resolve) => proxy.close(resolve));
  }
});

describe('bad input is one line on stderr and exit code 2', () => {
  const placement = () => ['--key-from', 'external-image-id', '--bucket', bucket];
  const cases: [string, () => string[], string | RegExp][] = [
    [
      'an unknown collection',
      () => ['--source', 'no-such-collection', '--out', path.join(directory, 'x.jsonl'), ...placement()],
      'reindex: the collection no-such-collection does not exist in us-east-1\n',
    ],
    [
      'an unknown profile',
      () => [
        '--source',
        collection,
        '--out',
        path.join(directory, 'x.jsonl'),
        ...placement(),
        '--source-profile',
        'no-such-profile',
      ],
      'reindex: the profile no-such-profile gives no credentials: it is in neither ~/.aws/config nor ~/.aws/credentials, or it is incomplete\n',
    ],
    [
      'no placement',
      () => ['--source', collection, '--out', path.join(directory, 'x.jsonl')],
      'reindex: say where the images are with one of --key-from external-image-id, --key-template or --mapping\n',
    ],
    [
      'two placements',
      () => [
        '--source',
        collection,
        '--out',
        path.join(directory, 'x.jsonl'),
        ...placement(),
        '--key-template',
        `s3://${bucket}/{FaceId}`,
      ],
      'reindex: --key-from and --key-template exclude each other: choose one\n',
    ],
    [
      'a template naming an unknown field',
      () => [
        '--source',
        collection,
        '--out',
        path.join(directory, 'x.jsonl'),
        '--key-template',
        `s3://${bucket}/{Name}.jpg`,
      ],
      'reindex: the key template names {Name}; it may name only {FaceId}, {ImageId}, {ExternalImageId}\n',
    ],
    [
      'a mapping file that is not there',
      () => [
        '--source',
        collection,
        '--out',
        path.join(directory, 'x.jsonl'),
        '--mapping',
        path.join(directory, 'none.csv'),
      ],
      `reindex: the mapping file ${path.join(directory, 'none.csv')} cannot be read: ENOENT\n`,
    ],
    [
      'an output bucket that does not exist',
      () => ['--source', collection, '--out', 's3://no-such-bucket-here/x.jsonl', ...placement()],
      'reindex: the bucket no-such-bucket-here of the records file does not exist\n',
    ],
    [
      'an output that is no S3 URI',
      () => ['--source', collection, '--out', 's3://just-a-bucket', ...placement()],
      'reindex: "s3://just-a-bucket" is not an S3 URI of the form s3://bucket/key\n',
    ],
    [
      'a local output that cannot be written',
      () => ['--source', collection, '--out', path.join(directory, 'no/such/dir.jsonl'), ...placement()],
      /^reindex: the records file .*no\/such\/dir\.jsonl cannot be written: ENOENT\n$/,
    ],
  ];

  test.each(cases)('%s', async (_, args, message) => {
    const outcome = await runCli(['prepare', ...args()], env);

    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe('');
    if (typeof message === 'string') expect(outcome.stderr).toBe(message);
    else expect(outcome.stderr).toMatch(message);
  });

  test('a mapping file without a column of S3 URIs, or with a bad row, names what is wrong', async () => {
    const noUris = path.join(directory, 'no-uris.csv');
    writeFileSync(noUris, 'ExternalImageId,path\nana,photos/ana.png\n');
    const badRow = path.join(directory, 'bad-row.csv');
    writeFileSync(badRow, `ExternalImageId,S3Uri\nana,s3://${bucket}/ana.png\nben,photos/ben.png\n`);
    const ragged = path.join(directory, 'ragged.csv');
    writeFileSync(ragged, `ExternalImageId,S3Uri\nana,s3://${bucket}/ana.png,extra\n`);
    // Each its own records file: run at once, they would race to create one.
    const run = (file: string) =>
      runCli(
        [
          'prepare',
          '--source',
          collection,
          '--out',
          path.join(directory, `${path.basename(file)}.jsonl`),
          '--mapping',
          file,
        ],
        env,
      );

    const outcomes = await Promise.all([noUris, badRow, ragged].map(run));

    expect(outcomes.map((outcome) => outcome.code)).toEqual([2, 2, 2]);
    expect(outcomes[0]?.stderr).toBe(
      'reindex: the mapping file needs one column of s3:// URIs, headed S3Uri (none found)\n',
    );
    expect(outcomes[1]?.stderr).toBe(
      'reindex: line 3 of the mapping file: "photos/ben.png" is not an S3 URI of the form s3://bucket/key\n',
    );
    expect(outcomes[2]?.stderr).toMatch(
      /^reindex: the mapping file .*ragged\.csv cannot be read: Invalid Record Length: .*\n$/,
    );
  });
});
