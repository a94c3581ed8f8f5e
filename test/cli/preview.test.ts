/**
 * `reindex preview` in its own process, against a rekognition-local of this suite's own (so its
 * counters show every call the preview made and no other suite's) and the stack's moto, with a
 * bucket, queues and table of the suite's own, so "nothing was written" can be checked everywhere
 * the tool could write.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type BoundingBox as SdkBoundingBox,
  CreateCollectionCommand,
  DescribeCollectionCommand,
  DetectFacesCommand,
  type Face,
  IndexFacesCommand,
  ListCollectionsCommand,
  ListFacesCommand,
} from '@aws-sdk/client-rekognition';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SAMPLE_PHOTOS } from '../../infra/rekognition-local/calibrate';
import type { DeclaredFace } from '../../infra/rekognition-local/images';
import { syntheticPng } from '../../infra/rekognition-local/synthetic-images';
import type { PreviewReport } from '../../src/cli/preview';
import type { BoundingBox } from '../../src/domain/matching';
import { ReasonCode } from '../../src/domain/reasons';
import { lastLine, runCli } from '../../harness/cli';
import { type RunningRekognition, startRekognitionLocal } from '../../harness/rekognition-local';
import { createRunResources, type RunResources } from '../../harness/runs';

let resources: RunResources;
let rekognition: RunningRekognition;
let bucket: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  resources = await createRunResources();
  rekognition = await startRekognitionLocal();
  bucket = `preview-${randomUUID().slice(0, 8)}`;
  await resources.aws.s3.send(new CreateBucketCommand({ Bucket: bucket }));
  env = {
    ...process.env,
    AWS_ENDPOINT_URL_REKOGNITION: rekognition.endpoint,
    REINDEX_BUCKET: bucket,
    REINDEX_RESULTS_TABLE: resources.config.resultsTable,
    REINDEX_RESULTS_QUEUE_URL: resources.config.resultsQueueUrl,
    REINDEX_REVIEW_DLQ_URL: resources.config.reviewDlqUrl,
  };
}, 60_000);

afterAll(async () => {
  const { Contents = [] } = await resources.aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  if (Contents.length > 0) {
    await resources.aws.s3.send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: Contents.map(({ Key }) => ({ Key })) } }),
    );
  }
  await resources.aws.s3.send(new DeleteBucketCommand({ Bucket: bucket }));
  await rekognition?.stop();
  await resources?.release();
});

async function put(Key: string, Body: Buffer | string): Promise<string> {
  await resources.aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body }));
  return Key;
}

const toBox = ({ Left = 0, Top = 0, Width = 0, Height = 0 }: SdkBoundingBox = {}): BoundingBox => ({
  Left,
  Top,
  Width,
  Height,
});

/** A box inside `outer`, about its centre, whose IoU with `outer` is exactly `overlap`. */
function shrunk(outer: BoundingBox, overlap: number): BoundingBox {
  const scale = Math.sqrt(overlap);
  const Width = outer.Width * scale;
  const Height = outer.Height * scale;
  return { Left: outer.Left + (outer.Width - Width) / 2, Top: outer.Top + (outer.Height - Height) / 2, Width, Height };
}

const record = (Key: string, boxes: BoundingBox[], ExternalImageId?: string) =>
  JSON.stringify({
    Bucket: bucket,
    Key,
    ExternalImageId,
    Faces: boxes.map((BoundingBoxes) => ({ FaceId: randomUUID(), ImageId: randomUUID(), BoundingBoxes })),
  });

/**
 * Everything the tool could have written to: the bucket, the suite's table and queues, the collections and their faces.
 */
async function writableState(): Promise<unknown> {
  const { Contents = [] } = await resources.aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  const { Items = [] } = await resources.aws.dynamodb.send(
    new ScanCommand({ TableName: resources.config.resultsTable }),
  );
  const queues = await Promise.all(
    [resources.config.resultsQueueUrl, resources.config.reviewDlqUrl].map(
      async (QueueUrl) =>
        (
          await resources.aws.sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
            }),
          )
        ).Attributes,
    ),
  );
  const { CollectionIds = [] } = await rekognition.client.send(new ListCollectionsCommand({}));
  const collections = await Promise.all(
    CollectionIds.map(async (CollectionId) => {
      const { FaceCount, UserCount } = await rekognition.client.send(new DescribeCollectionCommand({ CollectionId }));
      return { CollectionId, FaceCount, UserCount };
    }),
  );
  return { objects: Contents.map(({ Key, ETag }) => `${Key} ${ETag}`).sort(), rows: Items.length, queues, collections };
}

/** Rekognition operations called since the counters were zeroed, with how many times. */
async function callsSince(): Promise<Record<string, number>> {
  const counters = (await rekognition.admin('GET', '/_admin/counters')) as Record<string, { calls: number }>;
  return Object.fromEntries(Object.entries(counters).map(([operation, { calls }]) => [operation, calls]));
}

describe('synthetic photos whose faces the test places', () => {
  let manifest: string;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    const prefix = `synthetic-${randomUUID()}`;
    const photo = async (name: string, faces: DeclaredFace[]) => {
      const Key = await put(`${prefix}/${name}.png`, syntheticPng(faces));
      keys[name] = Key;
      // What the new model sees, learnt as an operator would: by asking it.
      const { FaceDetails = [] } = await rekognition.client.send(
        new DetectFacesCommand({ Image: { S3Object: { Bucket: bucket, Name: Key } } }),
      );
      return { Key, detected: FaceDetails.map((detail) => toBox(detail.BoundingBox)) };
    };
    const ana = await photo('ana', [{ person: 'ana', box: [0.1, 0.1, 0.4, 0.4] }]);
    const bo = await photo('bo', [{ person: 'bo', box: [0.3, 0.2, 0.3, 0.4] }]);
    const cy = await photo('cy', [{ person: 'cy', box: [0.2, 0.3, 0.4, 0.3] }]);
    const empty = await photo('empty', []);
    const pair = await photo('pair', [
      { person: 'dee', box: [0.05, 0.1, 0.4, 0.4] },
      { person: 'eve', box: [0.6, 0.5, 0.3, 0.3] },
    ]);
    keys.broken = await put(`${prefix}/broken.png`, 'this is no image');
    keys.missing = `${prefix}/missing.png`;
    const lines = [
      record(ana.Key, [shrunk(ana.detected[0]!, 0.95)]),
      record(bo.Key, [shrunk(bo.detected[0]!, 0.65)]),
      record(cy.Key, [shrunk(cy.detected[0]!, 0.45)]),
      record(empty.Key, [{ Left: 0.2, Top: 0.2, Width: 0.3, Height: 0.3 }]),
      // The old model knew dee only; the new one finds eve as well.
      record(pair.Key, [shrunk(pair.detected[0]!, 0.95)]),
      record(keys.broken, [{ Left: 0.2, Top: 0.2, Width: 0.3, Height: 0.3 }]),
      record(keys.missing, [{ Left: 0.2, Top: 0.2, Width: 0.3, Height: 0.3 }]),
      JSON.stringify({ Bucket: bucket, Key: 'no-faces.png', Faces: [] }),
    ];
    manifest = `s3://${bucket}/${await put(`${prefix}/records.jsonl`, lines.join('\n'))}`;
  }, 60_000);

  test('--all forecasts every threshold exactly and writes nothing', async () => {
    const before = await writableState();
    await rekognition.admin('DELETE', '/_admin/counters');

    const outcome = await runCli(['preview', '--manifest', manifest, '--all', '--json'], env);

    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    const report = JSON.parse(lastLine(outcome.stdout)) as PreviewReport;
    expect(report.file).toEqual({
      records: 8,
      validRecords: 7,
      oldFaces: 7,
      refusedByReason: { [ReasonCode.InvalidRecord]: 1 },
      truncated: undefined,
    });
    expect(report.sample).toMatchObject({ images: 7, all: true, answered: 5, failed: 2, oldFaces: 5, newFaces: 5 });
    expect(
      report.thresholds.map((row) => [
        row.threshold,
        row.matched,
        row.noFaceDetected,
        row.iouBelowThreshold,
        row.newFacesNobodyHad,
      ]),
    ).toEqual([
      [0.3, 4, 1, 0, 1],
      [0.4, 4, 1, 0, 1],
      [0.5, 3, 1, 1, 2],
      [0.6, 3, 1, 1, 2],
      [0.7, 2, 1, 2, 3],
    ]);
    expect(report.thresholds.every((row) => row.margin === 0)).toBe(true);
    expect(report.wholeFile.scale).toBe(1);
    expect(report.failed).toEqual([
      { reason: ReasonCode.ImageNotFound, count: 1, images: [`s3://${bucket}/${keys.missing}`] },
      { reason: ReasonCode.InvalidImageFormat, count: 1, images: [`s3://${bucket}/${keys.broken}`] },
    ]);
    expect(report.recommendedThreshold).toBe(0.4);

    expect(await callsSince()).toEqual({ DetectFaces: 7 });
    expect(await writableState()).toEqual(before);
  });

  test('the table a person reads says the same', async () => {
    const outcome = await runCli(['preview', '--records', manifest, '--all', '--thresholds', '0.7,0.5'], env);

    expect(outcome.code).toBe(0);
    const lines = outcome.stdout.split('\n');
    expect(lines[0]).toBe(`${manifest}: 8 records, 7 valid with 7 old faces; refused INVALID_RECORD 1`);
    expect(lines[1]).toBe('DetectFaces on all 7 images: 5 answered with 5 faces, 2 failed');
    expect(lines.find((line) => line.startsWith('0.50'))?.split(/\s{2,}/)).toEqual([
      '0.50',
      '3 (60.0%)',
      '1 (20.0%)',
      '1 (20.0%)',
      '2',
    ]);
    expect(lines.find((line) => line.startsWith('0.70'))?.split(/\s{2,}/)).toEqual([
      '0.70',
      '2 (40.0%)',
      '1 (20.0%)',
      '2 (40.0%)',
      '3',
    ]);
    expect(lines).toContain(`    s3://${bucket}/${keys.missing}`);
    expect(lastLine(outcome.stdout)).toBe(
      'recommended: --iou 0.5, the strictest threshold tried that matches within 1 point of the most any did (60.0%)',
    );
  });

  test('a JSON array that breaks off is forecast up to the break, and the break is reported', async () => {
    const records = [
      record(keys.ana!, [{ Left: 0.1, Top: 0.1, Width: 0.4, Height: 0.4 }]),
      record(keys.bo!, [{ Left: 0.3, Top: 0.2, Width: 0.3, Height: 0.4 }]),
    ];
    const Key = await put(`broken-off-${randomUUID()}.json`, `[${records.join(',')},{"Bucket": "${bucket}", "Ke`);

    const outcome = await runCli(['preview', '--manifest', `s3://${bucket}/${Key}`, '--all', '--json'], env);

    expect(outcome.code).toBe(0);
    const report = JSON.parse(lastLine(outcome.stdout)) as PreviewReport;
    expect(report.file).toMatchObject({ records: 2, validRecords: 2, oldFaces: 2 });
    expect(report.file.truncated).toMatch(/^the records file is not valid JSON after record 2: /);
    expect(report.sample).toMatchObject({ images: 2, answered: 2 });
  });

  test('a sample is drawn again by its seed and extrapolated to the whole file', async () => {
    const sample = async (seed: string) => {
      const outcome = await runCli(['preview', '--manifest', manifest, '--sample', '3', '--seed', seed, '--json'], env);
      expect(outcome.code).toBe(0);
      return JSON.parse(lastLine(outcome.stdout)) as PreviewReport;
    };

    const first = await sample('seven');
    const again = await sample('seven');

    expect(first.sample).toMatchObject({ images: 3, all: false, seed: 'seven' });
    expect(first.sample.answered + first.sample.failed).toBe(3);
    expect(first.wholeFile.scale).toBeCloseTo(7 / 3, 12);
    expect(first.wholeFile.thresholds[0]?.matched).toBe(Math.round((first.thresholds[0]?.matched ?? 0) * (7 / 3)));
    expect(again).toEqual(first);
  });
});

test('on real photos of a 6.0 collection, the 7.0 model keeps every face at 0.5 and finds faces 6.0 missed', async () => {
  await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '6.0' });
  const collectionId = `preview-v6-${randomUUID()}`;
  try {
    await rekognition.client.send(new CreateCollectionCommand({ CollectionId: collectionId }));
  } finally {
    await rekognition.admin('PUT', '/_admin/settings', { currentFaceModelVersion: '7.0' });
  }
  const prefix = `photos-${randomUUID()}`;
  for (const photo of SAMPLE_PHOTOS) {
    const name = path.basename(photo, '.jpg');
    const Key = await put(`${prefix}/${name}.jpg`, readFileSync(photo));
    await rekognition.client.send(
      new IndexFacesCommand({
        CollectionId: collectionId,
        Image: { S3Object: { Bucket: bucket, Name: Key } },
        ExternalImageId: name,
        QualityFilter: 'NONE',
      }),
    );
  }
  // The records file, as the original solution's notebook builds it: ListFaces grouped by image.
  const { Faces = [] } = await rekognition.client.send(
    new ListFacesCommand({ CollectionId: collectionId, MaxResults: 4096 }),
  );
  const byImage = new Map<string, Face[]>();
  for (const face of Faces)
    byImage.set(face.ExternalImageId ?? '', [...(byImage.get(face.ExternalImageId ?? '') ?? []), face]);
  const lines = [...byImage].map(([name, faces]) =>
    JSON.stringify({
      Bucket: bucket,
      Key: `${prefix}/${name}.jpg`,
      ExternalImageId: name,
      Faces: faces.map((face) => ({
        FaceId: face.FaceId,
        ImageId: face.ImageId,
        BoundingBoxes: toBox(face.BoundingBox),
      })),
    }),
  );
  const manifest = `s3://${bucket}/${await put(`${prefix}/records.jsonl`, lines.join('\n'))}`;
  const before = await writableState();
  await rekognition.admin('DELETE', '/_admin/counters');

  const outcome = await runCli(['preview', '--manifest', manifest, '--json'], env);

  expect(outcome.stderr).toBe('');
  expect(outcome.code).toBe(0);
  const report = JSON.parse(lastLine(outcome.stdout)) as PreviewReport;
  expect(report.file).toMatchObject({ records: 6, validRecords: 6, oldFaces: Faces.length });
  expect(report.sample).toMatchObject({ images: 6, all: true, answered: 6, failed: 0, oldFaces: Faces.length });
  const atHalf = report.thresholds.find((row) => row.threshold === 0.5);
  // rekognition-local's calibration: a face's 6.0 and 7.0 boxes overlap with IoU 0.65 or more.
  expect(atHalf).toMatchObject({ matched: Faces.length, noFaceDetected: 0, iouBelowThreshold: 0 });
  // The older detector misses faces the newer one finds (one of three in sample2.jpg).
  expect(atHalf?.newFacesNobodyHad).toBe(report.sample.newFaces - Faces.length);
  expect(atHalf?.newFacesNobodyHad).toBeGreaterThan(0);
  const matched = report.thresholds.map((row) => row.matched);
  expect(matched).toEqual([...matched].sort((a, b) => b - a));
  expect(await callsSince()).toEqual({ DetectFaces: 6 });
  expect(await writableState()).toEqual(before);
}, 180_000);

test.each([
  [['preview'], /^reindex: say which records file: --records <s3-uri>\n$/],
  [
    ['preview', '--manifest', 'records.jsonl'],
    /^reindex: "records\.jsonl" is not an S3 URI of the form s3:\/\/bucket\/key\n$/,
  ],
  [
    ['preview', '--manifest', 's3://rekognition-reindex-local/no/such/records.jsonl'],
    /^reindex: the records file s3:\/\/rekognition-reindex-local\/no\/such\/records\.jsonl does not exist\n$/,
  ],
  [
    ['preview', '--manifest', 's3://no-such-bucket-here/records.jsonl'],
    /^reindex: the records file s3:\/\/no-such-bucket-here\/records\.jsonl does not exist\n$/,
  ],
  [
    ['preview', '--manifest', 's3://b/k', '--thresholds', '0.5,half'],
    /^reindex: error: option '--thresholds <list>' argument '0\.5,half' is invalid\. --thresholds must be numbers from 0\.01 to 1 separated by commas, like 0\.3,0\.5,0\.7\n$/,
  ],
  [
    ['preview', '--manifest', 's3://b/k', '--thresholds', '1.5'],
    /^reindex: error: option '--thresholds <list>' argument '1\.5' is invalid\. --thresholds must be numbers/,
  ],
  [
    ['preview', '--manifest', 's3://b/k', '--sample', '0'],
    /^reindex: error: option '--sample <n>' argument '0' is invalid\. --sample must be a whole number from 1 to 1000000\n$/,
  ],
  [
    ['preview', '--manifest', 's3://b/k', '--sample', '5', '--all'],
    /^reindex: error: option '--all' cannot be used with option '--sample <n>'\n$/,
  ],
])('bad input %j is one line on stderr and exit code 2', async (args, message) => {
  const outcome = await runCli(args, env);

  expect(outcome.stderr).toMatch(message);
  expect(outcome.code).toBe(2);
});

test('a records file that is neither JSON Lines nor a JSON array is one line and exit code 2', async () => {
  const Key = await put(`garbage-${randomUUID()}.csv`, 'Bucket,Key\nphotos,ana.jpg\n');

  const outcome = await runCli(['preview', '--manifest', `s3://${bucket}/${Key}`], env);

  expect(outcome.stderr).toBe(
    "reindex: the records file must be a JSON array of records or JSON Lines, one record object a line; it starts with 'B'\n",
  );
  expect(outcome.code).toBe(2);
});
