import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../../src/aws/clients';
import { loadConfig } from '../../src/domain/config';
import { MAX_S3_IMAGE_BYTES } from '../../src/domain/image-checks';
import { runCli } from '../../harness/cli';
import { useLocalStack } from '../../harness/local-stack';

let env: NodeJS.ProcessEnv;
let aws: AwsClients;
let bucket: string;
const prefix = `tests/validate-${randomUUID()}`;
const directory = mkdtempSync(path.join(tmpdir(), 'validate-test-'));

const box = { Left: 0.1, Top: 0.1, Width: 0.3, Height: 0.4 };
const faces = (...boxes: object[]) =>
  boxes.map((BoundingBoxes) => ({ FaceId: randomUUID(), ImageId: randomUUID(), BoundingBoxes }));
const record = (Key: string, ...boxes: object[]) => ({
  Bucket: bucket,
  Key: `${prefix}/${Key}`,
  Faces: faces(...(boxes.length > 0 ? boxes : [box])),
});

const IMAGES: Record<string, Buffer> = {
  'face.png': syntheticPng([{ person: 'ana', box: [0.1, 0.1, 0.3, 0.4] }]),
  // A real JPEG starts so; the rest of the bytes is no business of validate's.
  'face.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]),
  'empty.png': Buffer.alloc(0),
  'face.gif': Buffer.from('GIF89a\x01\x00\x01\x00'),
  'huge.png': Buffer.concat([syntheticPng([]), Buffer.alloc(MAX_S3_IMAGE_BYTES)]),
  'small.png': syntheticPng([{ person: 'ana', box: [0.1, 0.1, 0.3, 0.4] }], 40),
};

beforeAll(async () => {
  env = { ...process.env, ...useLocalStack() };
  const config = loadConfig();
  aws = createAwsClients(config);
  bucket = config.bucket;
  await Promise.all(
    Object.entries(IMAGES).map(([name, Body]) =>
      aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${name}`, Body })),
    ),
  );
});

afterAll(() => {
  destroyAwsClients(aws);
  rmSync(directory, { recursive: true, force: true });
});

const lines = (text: string) =>
  text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);

test('every kind of bad record and image is one line of the failures file with its reason, and exit code 1', async () => {
  const records = path.join(directory, 'mixed.jsonl');
  writeFileSync(
    records,
    [
      JSON.stringify(record('face.png')),
      JSON.stringify(record('face.jpg', box, { Left: -0.05, Top: 0.5, Width: 0.2, Height: 0.3 })),
      JSON.stringify(record('missing.png')),
      JSON.stringify(record('empty.png')),
      JSON.stringify(record('face.gif')),
      JSON.stringify(record('huge.png')),
      JSON.stringify(record('face.png', { Left: 1.2, Top: 0.1, Width: 0.2, Height: 0.2 })),
      '{"Bucket": "photos", ',
      JSON.stringify(record('face.png')),
      JSON.stringify(record('small.png')),
    ].join('\n'),
  );

  const outcome = await runCli(['validate', records, '--concurrency', '3', '--json'], env);

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(1);
  expect(JSON.parse(outcome.stdout)).toEqual({
    recordsFile: records,
    records: 10,
    // face.png is named twice by valid records and checked once.
    imagesChecked: 7,
    valid: 3,
    invalid: 7,
    invalidByReason: {
      IMAGE_NOT_FOUND: 1,
      IMAGE_EMPTY: 1,
      INVALID_IMAGE_FORMAT: 1,
      IMAGE_TOO_LARGE: 1,
      IMAGE_TOO_SMALL: 1,
      INVALID_RECORD: 2,
    },
    facesPastEdge: 1,
    failures: `${records}.failures.jsonl`,
  });
  const failures = lines(readFileSync(`${records}.failures.jsonl`, 'utf8')).sort(
    (a, b) => Number(a.index) - Number(b.index),
  );
  expect(failures).toEqual([
    {
      index: 2,
      Bucket: bucket,
      Key: `${prefix}/missing.png`,
      reason: 'IMAGE_NOT_FOUND',
      detail: `s3://${bucket}/${prefix}/missing.png does not exist`,
    },
    {
      index: 3,
      Bucket: bucket,
      Key: `${prefix}/empty.png`,
      reason: 'IMAGE_EMPTY',
      detail: 'the object is empty (0 bytes)',
    },
    {
      index: 4,
      Bucket: bucket,
      Key: `${prefix}/face.gif`,
      reason: 'INVALID_IMAGE_FORMAT',
      detail: 'neither JPEG nor PNG: it starts with 47 49 46 38 39 61 01 00',
    },
    expect.objectContaining({ index: 5, Key: `${prefix}/huge.png`, reason: 'IMAGE_TOO_LARGE' }),
    {
      index: 6,
      Bucket: bucket,
      Key: `${prefix}/face.png`,
      reason: 'INVALID_RECORD',
      detail: 'Faces[0].BoundingBoxes.Left must be less than 1',
    },
    { index: 7, reason: 'INVALID_RECORD', detail: expect.stringMatching(/^line 8 is not valid JSON: /) as string },
    {
      index: 9,
      Bucket: bucket,
      Key: `${prefix}/small.png`,
      reason: 'IMAGE_TOO_SMALL',
      detail: "40x40 pixels: under Rekognition's minimum of 80 pixels a side",
    },
  ]);
});

test('a valid records file in S3, as the original JSON array, passes with exit code 0 and an empty failures file', async () => {
  const Key = `${prefix}/records.json`;
  await aws.s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key,
      Body: JSON.stringify([record('face.png'), record('face.jpg'), record('face.png')]),
    }),
  );
  const failures = `s3://${bucket}/${prefix}/validation/failures.jsonl`;

  const outcome = await runCli(['validate', `s3://${bucket}/${Key}`, '--failures', failures], env);

  expect(outcome.code).toBe(0);
  expect(outcome.stdout.split('\n')).toEqual([
    `records file   s3://${bucket}/${Key}`,
    'records        3',
    'images checked 2',
    'valid          3',
    'invalid        0',
    `failures file  ${failures}`,
    '',
  ]);
  const { Body } = await aws.s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: `${prefix}/validation/failures.jsonl` }),
  );
  expect(await Body?.transformToString()).toBe('');
});

test('a records file that breaks off mid-array is a failure of the file, and the records before it are checked', async () => {
  const records = path.join(directory, 'broken.json');
  writeFileSync(records, `[${JSON.stringify(record('face.png'))}, {"Bucket": `);

  const outcome = await runCli(['validate', records, '--json'], env);

  expect(outcome.code).toBe(1);
  expect(JSON.parse(outcome.stdout)).toMatchObject({
    records: 2,
    valid: 1,
    invalid: 1,
    invalidByReason: { INVALID_RECORD: 1 },
  });
});

describe('bad input is one line on stderr and exit code 2', () => {
  const cases: [string, () => string[], string | RegExp][] = [
    [
      'a local records file that is not there',
      () => [path.join(directory, 'none.jsonl')],
      `reindex: the records file ${path.join(directory, 'none.jsonl')} cannot be read: ENOENT\n`,
    ],
    [
      'a records location that is no S3 URI',
      () => ['s3://just-a-bucket'],
      'reindex: "s3://just-a-bucket" is not an S3 URI of the form s3://bucket/key\n',
    ],
    [
      'a failures file that cannot be written',
      () => [path.join(directory, 'mixed.jsonl'), '--failures', path.join(directory, 'no/such/failures.jsonl')],
      /^reindex: the failures file .*no\/such\/failures\.jsonl cannot be written: ENOENT\n$/,
    ],
    [
      'a concurrency out of bounds',
      () => [path.join(directory, 'mixed.jsonl'), '--concurrency', '0'],
      /^reindex: error: option '--concurrency <n>' argument '0' is invalid\. --concurrency must be a whole number from 1 to 512\n$/,
    ],
  ];

  test.each(cases)('%s', async (_, args, message) => {
    writeFileSync(path.join(directory, 'mixed.jsonl'), '');
    const outcome = await runCli(['validate', ...args()], env);

    expect(outcome.code).toBe(2);
    expect(outcome.stdout).toBe('');
    if (typeof message === 'string') expect(outcome.stderr).toBe(message);
    else expect(outcome.stderr).toMatch(message);
  });

  test('a records object that is not there', async () => {
    const records = `s3://${bucket}/${prefix}/none.jsonl`;

    const outcome = await runCli(['validate', records], env);

    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toBe(`reindex: the records file ${records} does not exist\n`);
  });
});
