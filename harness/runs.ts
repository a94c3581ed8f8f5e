/**
 * What workflow and end-to-end tests of a run need: their own queues and table on the local stack
 * (so runs of different suites never read each other's messages), records files of synthetic
 * photos, and the checks a user makes after a run: rows in DynamoDB, messages in the review DLQ,
 * faces in the target.
 */
import { randomUUID } from 'node:crypto';
import { CreateTableCommand, DeleteTableCommand, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import { DeleteCollectionCommand, ListFacesCommand, ListUsersCommand } from '@aws-sdk/client-rekognition';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { DeclaredFace } from '../infra/rekognition-local/images';
import { syntheticPng } from '../infra/rekognition-local/synthetic-images';
import { type AwsClients, createAwsClients, destroyAwsClients } from '../src/aws/clients';
import { type Config, loadConfig } from '../src/domain/config';
import { createLedger } from '../src/stores/ledger';
import { resultsTableDefinition } from '../src/stores/results-table';
import type { ResultRow, ReviewItem } from '../src/domain/outcomes';
import { ROW_SIGNATURE_ATTRIBUTE, signRowBody } from '../src/domain/result-rows';
import { indexedTypes } from '../src/search-attributes';
import { type ReindexCollectionInput, SEARCH_ATTRIBUTES } from '../src/shared';
import { useLocalStack } from './local-stack';

export interface RunResources {
  config: Config;
  aws: AwsClients;
  /** Where SQS moves a results message received five times and never deleted, as the stack's results queue does. */
  resultsDlqUrl: string;
  /** Deletes the queues, the table and every collection the suite registered. */
  release(): Promise<void>;
  /** Deletes this collection when the suite ends. */
  ownCollection(collectionId: string): string;
}

/** A results table as stacks made it before the index of rows by run: keyed by OldFaceId alone. */
export async function createTableBeforeRowsByRun(aws: AwsClients, TableName: string): Promise<string> {
  const { GlobalSecondaryIndexes: _index, AttributeDefinitions = [], ...table } = resultsTableDefinition(TableName);
  // DynamoDB refuses attributes defined that no key uses.
  const keyed = AttributeDefinitions.filter(({ AttributeName }) => AttributeName === 'OldFaceId');
  await aws.dynamodb.send(new CreateTableCommand({ ...table, AttributeDefinitions: keyed }));
  await waitUntilTableExists({ client: aws.dynamodb, maxWaitTime: 30 }, { TableName });
  return TableName;
}

/** A results table like the stack's, keyed by OldFaceId, with its index of rows by run. */
export async function createResultsTable(aws: AwsClients, TableName: string): Promise<string> {
  await aws.dynamodb.send(new CreateTableCommand(resultsTableDefinition(TableName)));
  await waitUntilTableExists({ client: aws.dynamodb, maxWaitTime: 30 }, { TableName });
  return TableName;
}

/** A results queue with its DLQ, a review DLQ and a results table of the suite's own, beside the stack's bucket. */
export async function createRunResources(): Promise<RunResources> {
  useLocalStack();
  const base = loadConfig();
  const aws = createAwsClients(base);
  const suffix = randomUUID().slice(0, 8);
  const queue = async (name: string, Attributes?: Record<string, string>) =>
    (await aws.sqs.send(new CreateQueueCommand({ QueueName: `${name}-${suffix}`, Attributes }))).QueueUrl ?? '';
  const resultsTable = await createResultsTable(aws, `results-${suffix}`);
  const resultsDlqUrl = await queue('results-dlq');
  const { Attributes: dlq = {} } = await aws.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: resultsDlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const resultsQueueUrl = await queue('results', {
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.QueueArn, maxReceiveCount: 5 }),
  });
  const config: Config = { ...base, resultsQueueUrl, reviewDlqUrl: await queue('review'), resultsTable };
  const collections: string[] = [];
  return {
    config,
    aws,
    resultsDlqUrl,
    ownCollection(collectionId) {
      collections.push(collectionId);
      return collectionId;
    },
    async release() {
      await Promise.all([
        aws.sqs.send(new DeleteQueueCommand({ QueueUrl: config.resultsQueueUrl })),
        aws.sqs.send(new DeleteQueueCommand({ QueueUrl: config.reviewDlqUrl })),
        aws.sqs.send(new DeleteQueueCommand({ QueueUrl: resultsDlqUrl })),
        aws.dynamodb.send(new DeleteTableCommand({ TableName: resultsTable })),
        ...collections.map((CollectionId) =>
          aws.rekognition.send(new DeleteCollectionCommand({ CollectionId })).catch(() => undefined),
        ),
      ]);
      destroyAwsClients(aws);
    },
  };
}

const faceId = () => randomUUID();

/** One image of a records file: the faces really in the photo, and the old faces its record names. */
export interface PhotoSpec {
  faces: DeclaredFace[];
  /** Defaults to the faces in the photo; the old model's boxes. */
  oldFaces?: DeclaredFace[];
  userId?: string;
  /** Leave the photo out of S3: IMAGE_NOT_FOUND. */
  missing?: boolean;
}

/** An old face of a records file, with the user it belongs to. */
export interface OldFace {
  FaceId: string;
  UserId: string | undefined;
}

/** Writes the photos and a records file (JSON Lines, with `extraLines` appended raw) and returns where it is. */
export async function writeRecords(
  { config, aws }: RunResources,
  photos: PhotoSpec[],
  extraLines: string[] = [],
): Promise<{ manifest: ReindexCollectionInput['manifest']; oldFaceIds: string[]; oldFaces: OldFace[] }> {
  const fileId = randomUUID().slice(0, 8);
  const prefix = `tests/${fileId}-${randomUUID()}`;
  const oldFaces: OldFace[] = [];
  const lines: string[] = [];
  // Photos repeat a few images: many records, few uploads.
  const uploaded = new Map<string, string>();
  for (const [i, photo] of photos.entries()) {
    const body = syntheticPng(photo.faces);
    const signature = body.toString('base64');
    let Key = uploaded.get(signature);
    if (photo.missing) {
      Key = `${prefix}/missing-${i}.png`;
    } else if (!Key) {
      Key = `${prefix}/${i}.png`;
      await aws.s3.send(new PutObjectCommand({ Bucket: config.bucket, Key, Body: body }));
      uploaded.set(signature, Key);
    }
    const faces = (photo.oldFaces ?? photo.faces).map((face) => {
      const FaceId = faceId();
      oldFaces.push({ FaceId, UserId: photo.userId });
      return {
        FaceId,
        ImageId: randomUUID(),
        ...(photo.userId ? { UserId: photo.userId } : {}),
        BoundingBoxes: { Left: face.box[0], Top: face.box[1], Width: face.box[2], Height: face.box[3] },
      };
    });
    // Unique to the file: the same bytes under the same ExternalImageId in two files would be one image to Rekognition.
    lines.push(JSON.stringify({ Bucket: config.bucket, Key, ExternalImageId: `photo-${fileId}-${i}`, Faces: faces }));
  }
  lines.push(...extraLines);
  const manifest = { Bucket: config.bucket, Key: `${prefix}/records.jsonl` };
  await aws.s3.send(new PutObjectCommand({ ...manifest, Body: lines.join('\n') }));
  return { manifest, oldFaceIds: oldFaces.map((face) => face.FaceId), oldFaces };
}

/** The run's rows in the results table. */
export async function resultRows({ config, aws }: RunResources, runId: string): Promise<ResultRow[]> {
  const rows: ResultRow[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await aws.dynamodb.send(
      new ScanCommand({
        TableName: config.resultsTable,
        FilterExpression: 'RunId = :run',
        ExpressionAttributeValues: { ':run': runId },
        ExclusiveStartKey,
      }),
    );
    rows.push(...((page.Items ?? []) as ResultRow[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return rows;
}

/** Takes every message of the suite's review DLQ. */
/**
 * A result row of `RunId` in `CollectionId`, as the worker would send it,
 * for tests that put rows where a run left them.
 */
export function resultRow(RunId: string, CollectionId: string): ResultRow {
  const box = { Width: 0.3, Height: 0.3, Left: 0.2, Top: 0.2 };
  return {
    OldFaceId: randomUUID(),
    FaceId: randomUUID(),
    OldImageId: randomUUID(),
    ImageId: randomUUID(),
    ExternalImageId: undefined,
    UserId: undefined,
    Bucket: 'photos',
    Key: 'people/someone.jpg',
    BoundingBox: box,
    OldBoundingBox: box,
    IoU: 1,
    SourceCollectionId: undefined,
    CollectionId,
    FaceModelVersion: '7.0',
    RunId,
    MigratedAt: new Date().toISOString(),
    RecordIndex: 0,
  };
}

/** The message a worker sends for `row`: its body, signed with its run's key (made now if the run has none yet). */
export async function signedRowMessage({ config, aws }: RunResources, row: ResultRow) {
  const MessageBody = JSON.stringify(row);
  const key = await createLedger(aws.s3, config.bucket).ensureRunKey(row.CollectionId, row.RunId);
  return {
    MessageBody,
    MessageAttributes: {
      [ROW_SIGNATURE_ATTRIBUTE]: { DataType: 'String', StringValue: signRowBody(MessageBody, key) },
    },
  };
}

export async function takeReview({ config, aws }: RunResources): Promise<ReviewItem[]> {
  const items: ReviewItem[] = [];
  for (;;) {
    const { Messages = [] } = await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: config.reviewDlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (Messages.length === 0) return items;
    items.push(...Messages.map((message) => JSON.parse(message.Body ?? '{}') as ReviewItem));
    await aws.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: config.reviewDlqUrl,
        Entries: Messages.map((message, i) => ({ Id: String(i), ReceiptHandle: message.ReceiptHandle })),
      }),
    );
  }
}

/** The collection's faces, or with `UserId` those associated with that user. */
export async function facesIn({ aws }: RunResources, CollectionId: string, UserId?: string): Promise<string[]> {
  const ids: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await aws.rekognition.send(
      new ListFacesCommand({ CollectionId, UserId, MaxResults: 4096, NextToken }),
    );
    ids.push(...(page.Faces ?? []).map((face) => face.FaceId ?? ''));
    NextToken = page.NextToken;
  } while (NextToken);
  return ids.sort();
}

export async function usersIn({ aws }: RunResources, CollectionId: string): Promise<string[]> {
  const ids: string[] = [];
  let NextToken: string | undefined;
  do {
    const page = await aws.rekognition.send(new ListUsersCommand({ CollectionId, MaxResults: 500, NextToken }));
    ids.push(...(page.Users ?? []).map((user) => user.UserId ?? ''));
    NextToken = page.NextToken;
  } while (NextToken);
  return ids.sort();
}

/** Run options as `reindex start` would pass them, with what a test changes. */
export function runInput(
  manifest: ReindexCollectionInput['manifest'],
  targetCollectionId: string,
  changes: Partial<ReindexCollectionInput> = {},
): ReindexCollectionInput {
  return {
    manifest,
    targetCollectionId,
    sourceCollectionId: undefined,
    options: { iouThreshold: 0.5, qualityFilter: 'NONE', maxFaces: undefined, unmatched: 'delete' },
    force: false,
    batchSize: 500,
    batchesInFlight: 4,
    imagesInFlightPerBatch: 16,
    batchesPerExecution: 500,
    ...changes,
  };
}

/** The rekognition-local admin surface: quotas, latency, counters. */
export async function rekognitionAdmin(
  path: string,
  method: 'GET' | 'PUT' | 'DELETE',
  body?: unknown,
): Promise<unknown> {
  const endpoint = useLocalStack().AWS_ENDPOINT_URL_REKOGNITION ?? '';
  const response = await fetch(`${endpoint}/_admin/${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return response.json();
}

export async function indexFacesCalls(): Promise<number> {
  const counters = (await rekognitionAdmin('counters', 'GET')) as Record<string, { calls: number }>;
  return counters.IndexFaces?.calls ?? 0;
}

/**
 * The time-skipping server, like any namespace, refuses search attributes it was not told of;
 * it cannot list them, so all are added.
 */
export async function registerSearchAttributes(env: TestWorkflowEnvironment): Promise<void> {
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: indexedTypes(Object.values(SEARCH_ATTRIBUTES)),
  });
}

/** Waits in real time until `check` holds; activities run in real time even when a test server skips time. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
